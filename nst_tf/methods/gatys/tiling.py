"""Loss and gradient of a large image computed tile by tile, equal to the untiled ones.

The scheme (two passes over a grid of tiles that moves every iteration):

1. Every tile is a *core* (the pixels it is responsible for) plus a *margin* of at least
   VGG's receptive-field radius on each side (78 px up to conv5_1), so the activations
   over the core are exactly those of the whole image. Core edges lie on multiples of 16
   px, so every pooling window and every layer position lines up with the whole image.
2. Pass 1 (forward only): for every style layer, the sums over all core positions of the
   activations `sum a` and of their outer products `sum a a^T`, and the count `M`, are
   accumulated over the tiles: the statistics of the whole image, not of a tile. The
   style loss is a function of these statistics only (Gram: `sum a a^T / M`; mean_cov:
   mean and covariance from both sums), so it is computed exactly, together with
   `dJ/d(statistics)` by autodiff on that small function.
3. Pass 2 (forward + backward per tile): each tile's surrogate loss
   `<dJ/d sum a, sum_core a> + <dJ/d sum aa^T, sum_core a a^T> + content cost on the core`
   has, as its gradient with respect to the tile's pixels, exactly that tile's share of
   the whole image's gradient; the shares are added up (margins included).

The total-variation term is cheap and computed on the whole image. The grid's offset is
random (seeded) at every iteration, so no tile edge stays in one place and no seam can form.
Tiles run eagerly: their shapes change with the offset, and retracing a graph per shape
would cost more than the eager overhead on tiles this large.
"""

import numpy as np
import tensorflow as tf

from nst_tf import costs
from nst_tf.methods.gatys.losses import SCALE, content_targets, style_loss, total, tv_cost
from nst_tf.nets.layers import ALIGN, layer_names  # noqa: F401 (tiling.ALIGN)


def jump(layer):
    """Pixels per position of `layer` (1 for conv1_x, 2 for pool1 and conv2_x, ...)."""
    block = int(layer[4] if layer.startswith("conv") else layer[-1])
    return 2 ** (block - 1) if layer.startswith("conv") else 2**block


def receptive_radius(deepest):
    """Half the receptive field, in pixels, of a position of layer `deepest`."""
    field, step = 1, 1
    for name in layer_names("avg")[1:]:
        if name.startswith("conv"):
            field += 2 * step
        else:
            field, step = field + step, step * 2
        if name == deepest:
            break
    return (field - 1) // 2


def margin_for(layers):
    deepest = max(layers, key=layer_names("avg").index)
    return -(-receptive_radius(deepest) // ALIGN) * ALIGN


def core_edges(size, core, offset):
    """Core boundaries along one axis: multiples of ALIGN, shifted by `offset`, covering [0, size)."""
    edges = list(range(offset % core, size, core))
    return sorted(set([0, *[e for e in edges if 0 < e < size], size]))


def tiles(height, width, core, margin, offset=(0, 0)):
    """Boxes ((core y0, y1, x0, x1), (tile y0, y1, x0, x1)) covering the image once by their cores."""
    if core % ALIGN or margin % ALIGN or offset[0] % ALIGN or offset[1] % ALIGN:
        raise ValueError(f"tile core, margin and offset must be multiples of {ALIGN}")
    ys, xs = core_edges(height, core, offset[0]), core_edges(width, core, offset[1])
    boxes = []
    for y0, y1 in zip(ys, ys[1:]):
        for x0, x1 in zip(xs, xs[1:]):
            tile = (
                max(0, y0 - margin),
                min(height, y1 + margin),
                max(0, x0 - margin),
                min(width, x1 + margin),
            )
            boxes.append(((y0, y1, x0, x1), tile))
    return boxes


def core_slice(a, layer, core, tile, full_shape):
    """The activations of `layer` over the core, cut from the tile's activations `a`."""
    j = jump(layer)
    (y0, y1, x0, x1), (ty0, _, tx0, _) = core, tile
    h_end = -(-full_shape[0] // j) if y1 == full_shape[0] else y1 // j  # SAME pooling: ceil at the border
    w_end = -(-full_shape[1] // j) if x1 == full_shape[1] else x1 // j
    return a[:, y0 // j - ty0 // j : h_end - ty0 // j, x0 // j - tx0 // j : w_end - tx0 // j, :]


def moments(a):
    """(sum a, sum a a^T, count) over the positions of activations (1, h, w, n_C)."""
    x = tf.reshape(a, [-1, a.shape[-1]])
    return tf.reduce_sum(x, 0), costs.gram_of_positions(x), tf.cast(tf.shape(x)[0], tf.float32)


def accumulate(stats, layer, a):
    """Add the moments of `a` to stats[layer], in float64: the covariance is a difference of
    large sums (s2/M - mean mean^T), which float32 would round away."""
    for k, value in enumerate(moments(a)):
        stats[layer][k] += tf.cast(value, tf.float64)


def style_cost_from_moments(stats, targets, config):
    """J_style of the whole image from its per-layer moments (the same value as untiled)."""
    loss = style_loss(config)
    return sum(
        coeff * loss.cost_from_moments(targets[layer], *stats[layer]) for layer, coeff in config.style_layers
    )


class TiledCost:
    """Cost and gradient of the whole image, computed tile by tile (see the module docstring).

    Args:
      model: the VGG feature extractor (`build_vgg` with the needed outputs).
      content: preprocessed content image (1, H, W, 3).
      targets: style targets per layer, as `optimize.style_targets` makes them.
      config: the run's Config.
      core: tile core size in pixels (a multiple of 16).
    """

    def __init__(self, model, content, targets, config, core):
        self.model, self.targets, self.config, self.core = model, targets, config, core
        self.style_layers = [layer for layer, _ in config.style_layers]
        self.content_layers = [layer for layer, _ in config.content_layers]
        self.margin = margin_for(self.style_layers + self.content_layers)
        self.shape = content.shape[1:3]
        self.a_C = content_targets(self._content_targets(content), config)

    def _content_targets(self, content):
        """The content activations over the whole image, assembled from tile cores."""
        pieces = {layer: [] for layer in self.content_layers}
        for core, tile in tiles(*self.shape, self.core, self.margin):
            out = self.model(content[:, tile[0] : tile[1], tile[2] : tile[3], :])
            for layer in self.content_layers:
                pieces[layer].append((core, core_slice(out[layer], layer, core, tile, self.shape)))
        return {layer: self._assemble(layer, pieces[layer]) for layer in self.content_layers}

    def _assemble(self, layer, pieces):
        j = jump(layer)
        full = np.zeros(
            (1, -(-self.shape[0] // j), -(-self.shape[1] // j), pieces[0][1].shape[-1]), np.float32
        )
        for (y0, _, x0, _), piece in pieces:
            full[:, y0 // j : y0 // j + piece.shape[1], x0 // j : x0 // j + piece.shape[2], :] = piece.numpy()
        return full

    def _content_on_core(self, out, core, tile):
        J = 0.0
        for layer, weight in self.config.content_layers:
            j = jump(layer)
            a_G = core_slice(out[layer], layer, core, tile, self.shape)
            a_C = self.a_C[layer][
                :, core[0] // j : core[0] // j + a_G.shape[1], core[2] // j : core[2] // j + a_G.shape[2]
            ]
            scale = self.a_C.get(layer + SCALE, 1.0)  # of the whole image's targets
            J += weight * scale * costs.content_cost_share(a_C, a_G, *self.a_C[layer].shape[1:])
        return J

    def _surrogate_grad(self, piece, dstats, core, tile):
        """Gradient w.r.t. the tile's pixels of its surrogate loss (its share of the whole gradient)."""
        with tf.GradientTape() as tape:
            tape.watch(piece)
            out = self.model(piece)
            J = self.config.alpha * self._content_on_core(out, core, tile)
            for layer in self.style_layers:
                s1, s2, _ = moments(core_slice(out[layer], layer, core, tile, self.shape))
                J += tf.reduce_sum(dstats[layer][0] * s1) + tf.reduce_sum(dstats[layer][1] * s2)
        return tape.gradient(J, piece).numpy()

    def forward_pass(self, image, boxes):
        """Pass 1: per style layer [sum a, sum a a^T, M] over every core position; the content cost."""
        stats = {layer: [0.0, 0.0, 0.0] for layer in self.style_layers}
        J_content = 0.0
        for core, tile in boxes:
            out = self.model(tf.constant(image[:, tile[0] : tile[1], tile[2] : tile[3], :]))
            J_content += float(self._content_on_core(out, core, tile))
            for layer in self.style_layers:
                accumulate(stats, layer, core_slice(out[layer], layer, core, tile, self.shape))
        return stats, J_content

    def costs(self, image):
        """(J, J_content, J_style) of the whole image, forward passes only."""
        stats, J_content = self.forward_pass(image, tiles(*self.shape, self.core, self.margin))
        J_style = float(style_cost_from_moments(stats, self.targets, self.config))
        return self._total(image, J_content, J_style), J_content, J_style

    def _total(self, image, J_content, J_style):
        return float(total(J_content, J_style, tf.constant(image), self.config))

    def __call__(self, image, offset=(0, 0)):
        """(J, J_content, J_style, gradient) of the (1, H, W, 3) numpy image, as untiled."""
        boxes = tiles(*self.shape, self.core, self.margin, offset)
        stats, J_content = self.forward_pass(image, boxes)
        with tf.GradientTape() as tape:
            sums = {layer: s[:2] for layer, s in stats.items()}
            tape.watch(sums)
            J_style = style_cost_from_moments(stats, self.targets, self.config)
        dstats = tape.gradient(J_style, sums, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        weight = self.config.style_weight
        dstats = {layer: [tf.cast(weight * d, tf.float32) for d in ds] for layer, ds in dstats.items()}
        grad = np.zeros_like(image)
        for core, tile in boxes:  # pass 2: each tile's share of the gradient
            piece = tf.constant(image[:, tile[0] : tile[1], tile[2] : tile[3], :])
            grad[:, tile[0] : tile[1], tile[2] : tile[3], :] += self._surrogate_grad(
                piece, dstats, core, tile
            )
        if self.config.tv_weight:  # cheap: on the whole image
            x = tf.constant(image)
            with tf.GradientTape() as tape:
                tape.watch(x)
                tv = tv_cost(x)
            grad += self.config.tv_weight * tape.gradient(tv, x).numpy()
        J_style = float(J_style)
        return self._total(image, J_content, J_style), J_content, J_style, grad


def style_targets(model, styles, blend, config, core):
    """Blended style targets like `optimize.style_targets`, from tiled whole-image moments."""
    layers = [layer for layer, _ in config.style_layers]
    margin = margin_for(layers)
    targets = {}
    per_style = []
    for style in styles:
        stats = {layer: [0.0, 0.0, 0.0] for layer in layers}
        for c, t in tiles(*style.shape[1:3], core, margin):
            out = model(tf.constant(style[:, t[0] : t[1], t[2] : t[3], :]))
            for layer in layers:
                accumulate(stats, layer, core_slice(out[layer], layer, c, t, style.shape[1:3]))
        per_style.append(stats)
    loss = style_loss(config)
    for layer in layers:  # the moments of the mixture of the styles, then the target
        mean = sum(w * s[layer][0] / s[layer][2] for w, s in zip(blend, per_style))
        second = sum(w * s[layer][1] / s[layer][2] for w, s in zip(blend, per_style))
        targets[layer] = loss.target_from_moments(mean, second)
    return targets
