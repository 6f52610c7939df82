"""The optimisation: settings (the single home of defaults), costs, Adam and L-BFGS, `stylize()`.

Nothing here prints or writes files: `stylize()` yields `Progress` and the caller
decides what to show and save (see `nst_tf.report` and `nst_tf.run`).
"""

import dataclasses
import itertools
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from nst_tf import colors, costs, images, lbfgs, precision, tiling
from nst_tf.errors import NstError
from nst_tf.vgg import POOLINGS, build_vgg, layer_names

OPTIMIZERS = ("adam", "lbfgs")
INITS = ("noise", "content", "random")
PRESERVE_COLORS = ("none", "luminance", "histogram")
STYLE_LOSSES = ("gram", "mean_cov")


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a run; the defaults are the assignment's (`--preset assignment`).

    Attributes:
      iterations: optimisation steps (the assignment's `num_iterations`); L-BFGS iterations
        for `optimizer="lbfgs"`.
      save_every: report costs and yield the image every this many steps.
      learning_rate: Adam's learning rate on raw pixel values (0-255 scale).
      alpha: weight of the content cost.
      beta: weight of the style cost.
      noise_ratio: share of uniform noise in the starting image (`init="noise"`).
      width, height: working size in pixels; the content is resized to it.
      pooling: "avg" (the assignment's) or "max".
      content_layers: (layer, weight) pairs of the content cost.
      style_layers: (layer, coefficient) pairs of the style cost.
      seed: seed of the starting noise; None for fresh noise each run.
      optimizer: "adam" (the assignment's) or "lbfgs" (scipy's L-BFGS-B, pixels kept in range).
      lbfgs_history: number of corrections L-BFGS keeps.
      init: "noise" (the assignment's noisy content), "content", "random", or an image path.
      tv_weight: weight of the total-variation smoothing term (0: the assignment's loss).
      style_blend_weights: one weight per style image (normalised to sum 1); None = equal.
      style_scale: size of the style image relative to the content's.
      preserve_colors: "none", "luminance" (stylise the luminance only, keep the content's
        chroma) or "histogram" (match the style's colour statistics to the content first).
      style_loss: "gram" (the assignment's) or "mean_cov" (2-Wasserstein between Gaussians).
      ema: decay of the average of Adam's iterates that is reported and saved (0: off).
      tile_size: compute the loss and gradient in tiles with this core size in pixels
        (a multiple of 16; see `nst_tf.tiling`); 0 tiles only when the image would not fit
        `max_memory`.
      max_memory: memory budget in GiB for the optimisation; 0 = half the available memory.
      scales: coarse-to-fine: optimise at this many sizes, from 256 px (long side) up to
        width x height by equal factors, each starting from the previous result upsampled;
        0 picks 2x steps automatically; 1 (the assignment's) optimises at one size.
      precision: the VGG-19 convolutions' number format: "float32" (the assignment's),
        "bfloat16" (mixed precision: the image, Adam's state and the costs stay float32), or
        "auto": bfloat16 where the hardware runs it natively (see `nst_tf.precision`).
    """

    iterations: int = 200
    save_every: int = 20
    learning_rate: float = 2.0
    alpha: float = 10.0
    beta: float = 40.0
    noise_ratio: float = images.NOISE_RATIO
    width: int = 400
    height: int = 300
    pooling: str = "avg"
    content_layers: tuple = ((costs.CONTENT_LAYER, 1.0),)
    style_layers: tuple = tuple(costs.STYLE_LAYERS)
    seed: int | None = 1
    optimizer: str = "adam"
    lbfgs_history: int = 10
    init: str = "noise"
    tv_weight: float = 0.0
    style_blend_weights: tuple | None = None
    style_scale: float = 1.0
    preserve_colors: str = "none"
    style_loss: str = "gram"
    ema: float = 0.0
    tile_size: int = 0
    max_memory: float = 0.0
    scales: int = 1
    precision: str = "float32"

    def validate(self):
        """Raise NstError naming the first setting (as its CLI flag) that cannot work."""
        for flag, value in (
            ("iterations", self.iterations),
            ("save_every", self.save_every),
            ("learning_rate", self.learning_rate),
            ("lbfgs_history", self.lbfgs_history),
            ("style_scale", self.style_scale),
        ):
            if not value > 0:
                raise NstError(f"--{flag}={value}: must be greater than 0")
        for flag, value in (("width", self.width), ("height", self.height)):
            if value < images.MIN_SIDE:
                raise NstError(f"--{flag}={value}: must be at least {images.MIN_SIDE} pixels")
        for flag, value in (("alpha", self.alpha), ("beta", self.beta), ("tv_weight", self.tv_weight)):
            if value < 0 or not np.isfinite(value):
                raise NstError(f"--{flag}={value}: must be a finite number >= 0")
        if not 0 <= self.noise_ratio <= 1:
            raise NstError(f"--noise_ratio={self.noise_ratio}: must be between 0 and 1")
        if self.tile_size < 0 or self.tile_size % tiling.ALIGN:
            raise NstError(
                f"--tile_size={self.tile_size}: must be 0 (automatic) or a multiple of {tiling.ALIGN}"
            )
        if self.scales < 0:
            raise NstError(f"--scales={self.scales}: must be >= 0 (0 = automatic, 1 = one size)")
        if self.max_memory < 0:
            raise NstError(f"--max_memory={self.max_memory}: must be >= 0 (GiB; 0 = automatic)")
        if not 0 <= self.ema < 1:
            raise NstError(f"--ema={self.ema}: must be in [0, 1)")
        for flag, value, allowed in (
            ("pooling", self.pooling, POOLINGS),
            ("optimizer", self.optimizer, OPTIMIZERS),
            ("preserve_colors", self.preserve_colors, PRESERVE_COLORS),
            ("style_loss", self.style_loss, STYLE_LOSSES),
            ("precision", self.precision, precision.PRECISIONS),
        ):
            if value not in allowed:
                raise NstError(f"--{flag}={value}: must be one of {', '.join(allowed)}")
        if self.init not in INITS and not Path(self.init).is_file():
            raise NstError(f"--init={self.init}: must be one of {', '.join(INITS)} or an image file")
        self._validate_layers()
        return self

    def _validate_layers(self):
        known = layer_names(self.pooling)[1:]
        for flag, pairs in (("content_layers", self.content_layers), ("style_layers", self.style_layers)):
            if not pairs:
                raise NstError(f"--{flag}: give at least one layer")
            for layer, weight in pairs:
                if layer not in known:
                    raise NstError(f"--{flag}: unknown VGG-19 layer {layer!r}; use conv1_1 ... conv5_4")
                if not (weight >= 0 and np.isfinite(weight)):
                    raise NstError(f"--{flag}: weight of {layer} must be a finite number >= 0")
        blend = self.style_blend_weights
        if blend is not None and (min(blend) < 0 or sum(blend) <= 0):
            raise NstError("--style_blend_weights: weights must be >= 0 and not all 0")


PRESETS = {
    "assignment": Config(),
    # Chosen by measurement and by looking (docs/quality.md, section 2): L-BFGS from the content
    # image on the mean-and-covariance style loss with alpha = beta = 1. It keeps the content
    # recognisable under a clear style and has converged (loss falling < 1.5% over the last
    # quarter) well within 200 iterations at 256 px. bfloat16 where it is native (docs/precision.md:
    # the same L-BFGS runs end within 0.1% of float32's loss, scored in float32).
    "quality": Config(
        precision="auto",
        optimizer="lbfgs",
        init="content",
        iterations=200,
        alpha=1.0,
        beta=1.0,
        style_loss="mean_cov",
    ),
}


def parse_layers(text, flag):
    """`conv4_2` or `conv1_1:0.2,conv2_1:0.3` -> ((layer, weight), ...); weights default to 1/n.

    Raises:
      NstError: naming `flag` when a weight is not a number.
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    pairs = []
    for item in items:
        name, _, weight = item.partition(":")
        try:
            pairs.append((name.strip(), float(weight) if weight else 1.0 / len(items)))
        except ValueError:
            raise NstError(f"--{flag}: {item!r} is not layer or layer:weight (e.g. conv1_1:0.2)")
    if not pairs:
        raise NstError(f"--{flag}: give at least one layer")
    return tuple(pairs)


@dataclasses.dataclass
class Progress:
    """What `stylize()` yields after each step.

    Attributes:
      iteration: index of the step just taken (0-based, as the assignment counts).
      iterations: total number of steps.
      elapsed: seconds since the first step started.
      costs: {"total", "content", "style"} of the image after this step, as floats, and "tv"
        (its total variation, unweighted) when `tv_weight` > 0, on save iterations and the last
        one; else None. total = alpha content + beta style (+ tv_weight tv).
      image: the image after this step, (1, H, W, 3) minus means, when `costs` is set.
      failure: why the run stopped early (a loss that is not finite), else None.
      stopped: on the last Progress of an L-BFGS run that ended before `iterations`, scipy's
        reason (its line search found no lower loss, say), else None.
    """

    iteration: int
    iterations: int
    elapsed: float
    costs: dict | None = None
    image: np.ndarray | None = None
    failure: str | None = None
    stopped: str | None = None

    @property
    def is_last(self):
        return self.iteration == self.iterations - 1


class Adam:
    """Adam with tf.compat.v1.train.AdamOptimizer's update (the assignment's, epsilon 1e-8).

    Written out rather than taken from Keras so that its state is three plain
    variables, on the same device as the image, easy to inspect and checkpoint.
    """

    def __init__(self, var, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.lr, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.m = tf.Variable(tf.zeros_like(var), trainable=False, name="adam_m")
        self.v = tf.Variable(tf.zeros_like(var), trainable=False, name="adam_v")
        self.t = tf.Variable(0.0, trainable=False, name="adam_t")

    def propose(self, grad, var):
        """The next (m, v, t, var) without changing anything, so a bad step can be refused."""
        t = self.t + 1.0
        m = self.beta_1 * self.m + (1 - self.beta_1) * grad
        v = self.beta_2 * self.v + (1 - self.beta_2) * tf.square(grad)
        lr_t = self.lr * tf.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        return m, v, t, var - lr_t * m / (tf.sqrt(v) + self.epsilon)

    def commit(self, m, v, t):
        self.m.assign(m)
        self.v.assign(v)
        self.t.assign(t)

    def apply(self, grad, var):
        m, v, t, new_var = self.propose(grad, var)
        self.commit(m, v, t)
        var.assign(new_var)


class Average:
    """Bias-corrected exponential moving average of the iterates (crowsonkb's output averaging)."""

    def __init__(self, var, decay):
        self.decay = decay
        self.sum = tf.Variable(tf.zeros_like(var), trainable=False, name="ema_sum")
        self.weight = tf.Variable(0.0, trainable=False, name="ema_weight")

    def update(self, var):
        self.sum.assign(self.decay * self.sum + (1 - self.decay) * var)
        self.weight.assign(self.decay * self.weight + (1 - self.decay))

    def value(self):
        return self.sum / self.weight


def style_targets(model, styles, blend, config):
    """Per style layer, the blended target statistics of the style images (computed once)."""
    outputs = [model(tf.constant(style)) for style in styles]
    targets = {}
    for layer, _ in config.style_layers:
        if config.style_loss == "gram":
            targets[layer] = tf.add_n([w * costs.gram_target(out[layer]) for w, out in zip(blend, outputs)])
        else:
            targets[layer] = _blend_gaussians([costs.w2_target(out[layer]) for out in outputs], blend)
    return targets


def _blend_gaussians(stats, blend):
    """Moments of the mixture of the style Gaussians, as `costs.w2_target` returns them."""
    if len(stats) == 1:
        return stats[0]
    mean = sum(w * m for w, (m, _, _) in zip(blend, stats))
    second = sum(w * (c + tf.tensordot(m, m, 0)) for w, (m, c, _) in zip(blend, stats))
    return costs.gaussian_target(mean, second - tf.tensordot(mean, mean, 0))


def cost_terms(a_G, image, a_C, targets, config):
    """(J, J_content, J_style) of a generated image from its activations: the one formula of every path.

    With the assignment's settings J is exactly its `total_cost(compute_content_cost(...),
    compute_style_cost(...))`; the style Gram matrices are precomputed and normalised by
    their own size (same value, and style images may then differ in size or be blended).
    """
    layer_cost = (
        costs.layer_style_cost_from_gram if config.style_loss == "gram" else costs.layer_style_cost_w2
    )
    J_content = tf.add_n([w * costs.compute_content_cost(a_C[l], a_G[l]) for l, w in config.content_layers])
    J_style = tf.add_n([k * layer_cost(targets[l], a_G[l]) for l, k in config.style_layers])
    J = costs.total_cost(J_content, J_style, config.alpha, config.beta)
    if config.tv_weight:  # not in the assignment: jcjohnson's smoothing term
        J += config.tv_weight * costs.total_variation_cost(image)
    return J, J_content, J_style


def make_cost_fn(model, content, styles, blend, config):
    """Targets computed once; returns `cost(image) -> (J, J_content, J_style)`."""
    content_out = model(tf.constant(content))
    a_C = {layer: content_out[layer] for layer, _ in config.content_layers}  # constants
    targets = style_targets(model, styles, blend, config)

    def cost(image):
        return cost_terms(model(image), image, a_C, targets, config)

    return cost


def make_train_step(cost, image, optimizer, done, average=None):
    """A `tf.function` taking one Adam step on `image`; returns (J, ok).

    A step whose loss or resulting image is not finite changes nothing (`ok` is False),
    so the image stays the last good one.
    """

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            J, _, _ = cost(image)
        return J, _guarded_update(J, tape.gradient(J, image), image, optimizer, done, average)

    return train_step


def make_apply_step(image, optimizer, done, average=None):
    """A `tf.function` applying one Adam step from a given gradient; refuses non-finite results."""

    @tf.function
    def apply(J, grad):
        return _guarded_update(J, grad, image, optimizer, done, average)

    return apply


NOT_FINITE_HINT = "too high a --learning_rate (or --beta, --tv_weight); try a smaller one"


def not_finite(i, J):
    """Why a run stopped at Adam step i whose loss J or new image was not finite (the likely cause
    is `NOT_FINITE_HINT`)."""
    return f"step {i} made the loss or the image infinite or NaN (loss {float(J):.3g})"


def _guarded_update(J, grad, image, optimizer, done, average):
    """Commit the Adam step only if the loss and the new image are finite; returns whether it did."""
    m, v, t, new_image = optimizer.propose(grad, image)
    ok = tf.math.is_finite(J) & tf.reduce_all(tf.math.is_finite(new_image))
    if ok:
        optimizer.commit(m, v, t)
        image.assign(new_image)
        if average is not None:
            average.update(image)
        done.assign_add(1)
    return ok


# Peak memory of the optimisation, by precision, measured by bench/memory.py (bench/results/memory.json,
# least squares over 3 untiled and 4 tiled runs each) with about 25% headroom on top. Measured:
# - an untiled step (VGG-19 forward + backward to conv5_1, the Gram matrices, Adam), per image pixel:
#   float32 2202, bfloat16 1883 (bfloat16 saves less than half: conv1_1, the returned activations and
#   the Gram matrices stay float32);
# - a tiled step, per pixel of one tile (core plus margins; eager, so more than a pixel of the fused
#   step): float32 3124, bfloat16 2911; and per image pixel for the whole-image arrays (image, Adam's
#   moments, the gradient, the content activations): float32 224, bfloat16 150;
# - on top of either, 100-131 MiB that do not grow with the size, and what the first step pages in
#   (TensorFlow's and oneDNN's kernels: resident only once they run), so 384 MiB in all. A 768x576
#   run under 1.5 GiB with 256 MiB here peaked 2 MiB over its budget once, in a busy test session.
BYTES_PER_PIXEL = {"float32": 2800, "bfloat16": 2400}
TILE_BYTES_PER_PIXEL = {"float32": 3900, "bfloat16": 3600}
WHOLE_IMAGE_BYTES_PER_PIXEL = 300
STEP_OVERHEAD = 384 * 2**20
MIN_TILE = 4 * tiling.ALIGN

GPU_BUDGET = 8 * 2**30  # TensorFlow does not report a GPU's size; --max_memory sets it


def available_memory():
    """Bytes of memory the run may use by default: half the available RAM, or on a GPU
    `GPU_BUDGET` (TensorFlow's memory info is usage so far, not the card's size)."""
    if tf.config.list_physical_devices("GPU"):
        return GPU_BUDGET
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024 // 2
    except (OSError, KeyError, ValueError):
        return 4 * 2**30


def resident_bytes():
    """This process's resident memory now (Python, TensorFlow, the weights, the images)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 2**30  # a typical TensorFlow process with VGG-19 loaded


def tile_core(config, shape, styles, precision="float32", resident=None):
    """The tile core size to use (0: untiled), from `tile_size` or from the memory budget.

    The budget (`max_memory`, else `available_memory()`) is for the whole process: what it holds
    already (`resident`, default `resident_bytes()`) plus the optimisation's peak (the per-pixel
    costs above). On a GPU the activations live on the card, so the process's resident size does
    not count.

    Raises:
      NstError: `max_memory` is too small for even the smallest tile of this image.
    """
    if config.tile_size:
        return config.tile_size
    budget = config.max_memory * 2**30 if config.max_memory else available_memory()
    if tf.config.list_physical_devices("GPU"):
        resident = 0
    elif resident is None:
        resident = resident_bytes()
    fixed = resident + STEP_OVERHEAD
    largest = max([shape[0] * shape[1]] + [s.shape[1] * s.shape[2] for s in styles])
    untiled = fixed + largest * BYTES_PER_PIXEL[precision]
    if untiled <= budget:
        return 0
    layers = [layer for layer, _ in config.content_layers + config.style_layers]
    margin = tiling.margin_for(layers)
    room = budget - fixed - largest * WHOLE_IMAGE_BYTES_PER_PIXEL
    side = int((max(room, 0) / TILE_BYTES_PER_PIXEL[precision]) ** 0.5) - 2 * margin
    core = side // tiling.ALIGN * tiling.ALIGN
    if core >= MIN_TILE:
        return core
    if config.max_memory:
        tiled = (
            fixed
            + largest * WHOLE_IMAGE_BYTES_PER_PIXEL
            + (MIN_TILE + 2 * margin) ** 2 * TILE_BYTES_PER_PIXEL[precision]
        )
        need = min(untiled, tiled)
        raise NstError(
            f"--max_memory={config.max_memory:g}: a {shape[1]}x{shape[0]} run needs at least "
            f"{need / 2**30:.2f} GiB here ({resident / 2**30:.2f} GiB are in use before it starts); give more"
        )
    return MIN_TILE


@dataclasses.dataclass
class Problem:
    """The images of a run, ready for the network: (1, H, W, 3) minus means each."""

    content: np.ndarray
    styles: list
    blend: list
    start: np.ndarray
    content_rgb: np.ndarray  # resized uint8 content, for luminance-only recolouring
    luminance: bool

    def output(self, x):
        """The image to show for variable `x`: with the content's chroma put back if luminance-only."""
        if not self.luminance:
            return x
        grey = np.clip(x[0] + images.MEANS[0], 0, 255)
        rgb = colors.with_chroma_of(grey, self.content_rgb)
        return (rgb - images.MEANS[0])[np.newaxis].astype(np.float32)


def prepare(content_image, style_images, config):
    """Resize, recolour and preprocess the images; the starting image. Returns a Problem."""
    if isinstance(style_images, np.ndarray):
        style_images = [style_images]
    blend = _blend_weights(len(style_images), config.style_blend_weights)
    kept = [(s, w) for s, w in zip(style_images, blend) if w > 0]  # a zero weight drops its style
    content_rgb = images.resize_to(content_image, config.width, config.height)
    size = (
        max(round(config.width * config.style_scale), 16),
        max(round(config.height * config.style_scale), 16),
    )
    styles = [images.resize_to(s, *size) for s, _ in kept]
    content_net = content_rgb
    if config.preserve_colors == "histogram":
        styles = [colors.match_color_statistics(s, content_rgb) for s in styles]
    elif config.preserve_colors == "luminance":
        styles = [colors.luminance_image(s, match=content_rgb) for s in styles]
        content_net = colors.luminance_image(content_rgb)
    content = images.reshape_and_normalize_image(content_net)
    return Problem(
        content=content,
        styles=[images.reshape_and_normalize_image(s) for s in styles],
        blend=[w for _, w in kept],
        start=_start_image(content, config),
        content_rgb=content_rgb,
        luminance=config.preserve_colors == "luminance",
    )


def _blend_weights(n, weights):
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise NstError(f"--style_blend_weights has {len(weights)} weights for {n} style images")
    return [w / sum(weights) for w in weights]


def _start_image(content, config):
    if config.init == "noise":
        return images.generate_noise_image(content, config.noise_ratio, config.seed)
    if config.init == "content":
        return content.copy()
    if config.init == "random":
        return images.generate_noise_image(content, 1.0, config.seed)
    start = images.load_image(config.init)
    start = images.resize_to(start, content.shape[2], content.shape[1])
    return images.reshape_and_normalize_image(start)


def _pixel_bounds(shape):
    """L-BFGS-B box: every pixel within [0, 255] once the means are added back."""
    low = np.broadcast_to(-images.MEANS, shape).ravel().astype(np.float64)
    return np.stack([low, low + 255.0], axis=1)


class Stylizer:
    """One style transfer: the model, the targets, the image and the optimiser's state.

    `steps()` runs the optimisation; `checkpoint` (a `tf.train.Checkpoint`) holds all the
    state needed to continue exactly where it stopped; `snapshot()` reports the current
    image at any moment (after an interruption, say).
    """

    def __init__(self, content_image, style_images, weights, config=Config(), start=None):
        self.config = config.validate()
        self.problem = prepare(content_image, style_images, config)
        if start is not None:  # coarse-to-fine: the previous scale's result, resized to this one
            self.problem.start = resize_image(start, config.width, config.height)
        needed = [layer for layer, _ in config.content_layers + config.style_layers]
        self.precision = precision.resolve(config.precision)
        model = build_vgg(weights, config.pooling, outputs=sorted(set(needed)), precision=self.precision)
        self.resident = resident_bytes()  # what the process holds before the optimisation (run.json)
        p = self.problem
        self.tile = tile_core(config, p.content.shape[1:3], p.styles, self.precision, self.resident)
        if self.tile:
            targets = tiling.style_targets(model, p.styles, p.blend, config, self.tile)
            self.tiled = tiling.TiledCost(model, p.content, targets, config, self.tile)
        else:
            self.tiled = None
            self.cost = make_cost_fn(model, p.content, p.styles, p.blend, config)
            self.evaluate = tf.function(self.cost)
        self.image = tf.Variable(self.problem.start, name="image")
        self.done = tf.Variable(0, dtype=tf.int64, name="iterations_done")
        state = {"image": self.image, "done": self.done}
        self.adam = self.average = None
        if config.optimizer == "adam":
            self.adam = Adam(self.image, config.learning_rate)
            state.update(adam_m=self.adam.m, adam_v=self.adam.v, adam_t=self.adam.t)
            if config.ema:
                self.average = Average(self.image, config.ema)
                state.update(ema_sum=self.average.sum, ema_weight=self.average.weight)
        self.checkpoint = tf.train.Checkpoint(**state)
        self.started = None
        self.scale = (0, 1)  # (index, count) in a coarse-to-fine run

    def restore(self, prefix):
        """Load the state written by `checkpoint.write(prefix)` (Adam continues exactly)."""
        self.checkpoint.read(prefix).assert_consumed()

    def shown(self):
        """The image to show and save: the average of the iterates if kept, else the image."""
        return self.average.value() if self.average is not None else tf.convert_to_tensor(self.image)

    def snapshot(self, failure=None):
        """Progress for the current state, with its costs and image (one forward pass)."""
        done = int(self.done)
        image = self.shown()
        # the costs of the image after this step, as model_nn reported them
        J, J_content, J_style = self.tiled.costs(image.numpy()) if self.tiled else self.evaluate(image)
        elapsed = time.perf_counter() - self.started if self.started else 0.0
        costs_now = {"total": float(J), "content": float(J_content), "style": float(J_style)}
        if self.config.tv_weight:  # so that total = alpha content + beta style + tv_weight tv
            costs_now["tv"] = float(costs.total_variation_cost(tf.convert_to_tensor(image)))
        return Progress(
            done - 1, self.config.iterations, elapsed, costs_now, self.problem.output(image.numpy()), failure
        )

    def _progress(self, i):
        if i % self.config.save_every == 0 or i == self.config.iterations - 1:
            return self.snapshot()
        return Progress(i, self.config.iterations, time.perf_counter() - self.started)

    def steps(self):
        """Yield Progress after each remaining step; costs and image every `save_every` and at the end."""
        self.started = time.perf_counter()
        if self.adam is not None:
            yield from self._adam_steps()
        else:
            yield from self._lbfgs_steps()

    def _offset(self, i):
        """The tile grid's offset at step i: random, seeded, the same after a resume."""
        rng = np.random.default_rng([self.config.seed or 0, i])
        return tuple(int(v) * tiling.ALIGN for v in rng.integers(0, self.tile // tiling.ALIGN, 2))

    def _tiled_step(self):
        """One Adam step with the tiled gradient; returns (J, ok) like the fused train step."""
        i = int(self.done)
        J, _, _, grad = self.tiled(self.image.numpy(), self._offset(i))
        return J, self._apply(tf.constant(J, tf.float32), tf.constant(grad))

    def _adam_steps(self):
        if self.tiled:
            self._apply = make_apply_step(self.image, self.adam, self.done, self.average)
            train_step = self._tiled_step
        else:
            train_step = make_train_step(self.cost, self.image, self.adam, self.done, self.average)
        for i in range(int(self.done), self.config.iterations):
            J, ok = train_step()
            if not bool(ok):
                yield self.snapshot(failure=not_finite(i, J))
                return
            yield self._progress(i)

    def _lbfgs_steps(self):
        """L-BFGS-B from the current image (a resumed run starts with an empty history)."""
        shape, first = self.image.shape, int(self.done)

        @tf.function
        def value_and_grad(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                J = self.cost(x)[0]
            return J, tape.gradient(J, x)

        evaluations = itertools.count()  # the tile grid moves at every evaluation

        def fun(x):
            image = x.reshape(shape).astype(np.float32)
            if self.tiled:
                J, _, _, grad = self.tiled(image, self._offset(next(evaluations)))
            else:
                J, grad = (v.numpy() for v in value_and_grad(tf.constant(image)))
            if not np.isfinite(J):  # reject the point: the line search backs off
                return 1e30, np.zeros(x.size)
            return float(J), grad.ravel().astype(np.float64)

        x0 = self.image.numpy().ravel().astype(np.float64)
        left = self.config.iterations - first
        for k, (x, stop) in enumerate(
            lbfgs.iterates(fun, x0, _pixel_bounds(shape), left, self.config.lbfgs_history)
        ):
            self.image.assign(x.reshape(shape).astype(np.float32))
            self.done.assign(first + k + 1)
            if stop is None:
                yield self._progress(first + k)
                continue
            progress = self.snapshot()
            if first + k + 1 < self.config.iterations:  # ended early: say why
                progress.iterations, progress.stopped = first + k + 1, stop
            yield progress


def resize_image(image, width, height):
    """Resize a preprocessed (1, H, W, 3) image (bicubic) to (1, height, width, 3)."""
    resized = tf.image.resize(tf.constant(image), (height, width), method="bicubic", antialias=True)
    return resized.numpy().astype(np.float32)


def scale_sizes(config, start=256):
    """The (width, height) of every scale of a coarse-to-fine run, smallest first."""
    long_side = max(config.width, config.height)
    scales = config.scales or max(1, int(np.ceil(np.log2(max(long_side / start, 1)))) + 1)
    if scales == 1:
        return [(config.width, config.height)]
    start = min(start, long_side / 2 ** (scales - 1))  # small images: 2x steps below 256 px
    factor = (long_side / start) ** (1 / (scales - 1))
    sizes = []
    for k in reversed(range(scales)):
        w, h = round(config.width / factor**k), round(config.height / factor**k)
        sizes.append((max(w, images.MIN_SIDE), max(h, images.MIN_SIDE)))
    return sizes


def stylizers(content_image, style_images, weights, config=Config(), first_scale=0):
    """Coarse to fine: a Stylizer per scale of `scale_sizes(config)`, from `first_scale` on.

    Each starts from the previous one's image (`shown()`), resized, taken when the next one is
    asked for, so optimise (or restore and optimise) each before asking for the next. A scale
    whose run failed (`Progress.failure`) should end the loop: the next would start from it.

    Yields:
      Stylizer with `scale = (k, number of scales)` and the config of its size.
    """
    sizes, previous = scale_sizes(config), None
    for k in range(first_scale, len(sizes)):
        sized = dataclasses.replace(config, width=sizes[k][0], height=sizes[k][1])
        stylizer = Stylizer(content_image, style_images, weights, sized, previous)
        stylizer.scale = (k, len(sizes))
        yield stylizer
        previous = stylizer.shown().numpy()


def stylize(content_image, style_images, weights, config=Config()):
    """Optimise an image towards the content and the style(s); yield after each step.

    Args:
      content_image: (H, W, 3) uint8 RGB, any size (resized to the config's).
      style_images: one (H, W, 3) uint8 RGB array, or a list of them (blended).
      weights: VGGWeights (see `nst_tf.weights.resolve_weights`).
      config: Config.

    Yields:
      Progress after each step of each scale (`config.scales`, coarse to fine, see
      `stylizers`); with costs and the image every `save_every` steps and after the last. A
      step whose loss is not finite ends the run with a Progress whose `failure` says so and
      whose image is the last good one.
    """
    for stylizer in stylizers(content_image, style_images, weights, config):
        last = None
        for last in stylizer.steps():
            yield last
        if last is None or last.failure:
            return
