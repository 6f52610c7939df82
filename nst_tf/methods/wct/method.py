"""WCT on the method seam: `--method wct` whitens and colours VGG-19 features, relu5_1 to relu1_1.

At each level of `wct_levels` (deepest first) the current image is encoded, its features take the
style's mean and covariance (`transforms`; several styles by their blend weights, or each in its
mask's region), are blended with the content's by `strength`, and are decoded back to pixels by the
level's trained decoder; the next level starts from that image (the paper's cascade).
"""

import hashlib

import numpy as np
import tensorflow as tf

from nst_tf import images, precision
from nst_tf.errors import SettingError, WeightsError
from nst_tf.methods import base
from nst_tf.methods.gatys import tiling  # VGG-19's geometry: receptive fields, aligned tiles
from nst_tf.methods.gatys.memory import budget_bytes, resident_bytes
from nst_tf.methods.wct import transforms
from nst_tf.methods.wct.config import (
    ENCODER_POOLING,
    MIN_TILE,
    PRESETS,
    WHOLE_IMAGE_BYTES_PER_PIXEL,
    WCTSettings,
    train_command,
)
from nst_tf.nets import decoder as decoders
from nst_tf.nets.vgg import build_vgg

STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")  # what the reported distances compare

CONTENT_LAYER = "conv4_1"


def load_decoder(path, level, vgg_weights, used, command=train_command, method="wct"):
    """A level's trained decoder, refused (SettingError naming `decoder`) if made for another encoder
    or another method (the file's `method`; WCT's first files have none); `command(level, folder)`
    is the command that trains one (named in the refusal)."""
    try:
        decoders.verify(path)  # against its folder's models.json, before anything is read
        meta = decoders.read_meta(path)
        if meta.get("method", "wct") != method:
            how = command(level, path.parent)
            why = f"{path} is a decoder of --method {meta.get('method')}, not of {method}"
            raise SettingError("decoder", f"{{setting}}: {why}; train one with: {how}")
        encoder = meta.get("encoder", {})
        if encoder.get("sha256") != vgg_weights.sha256 or encoder.get("pooling") != ENCODER_POOLING:
            theirs, ours = str(encoder.get("sha256"))[:12], vgg_weights.sha256[:12]
            why = f"{path} was trained for other VGG-19 weights (sha256 {theirs}, these {ours})"
            how = f"{command(level, path.parent)} --weights {vgg_weights.path}"
            raise SettingError("decoder", f"{{setting}}: {why}; train one for them with: {how}")
        return decoders.load_decoder(path, level, decoders.widths_of(vgg_weights.layers), used)
    except WeightsError as e:
        raise SettingError("decoder", f"{{setting}}: {e}")


def statistics(f):
    """Each channel's mean and standard deviation over the positions of (1, H, W, C) features."""
    mean, var = tf.nn.moments(f, axes=[0, 1, 2])
    return mean, tf.sqrt(var)


def distances(out, content, styles, blend):
    """{content, style} of VGG-19 features {layer: (1, H, W, C)} of a result and its content, and
    of its styles' `statistics` {layer: (mean, std)}: the relu4_1 distance to the content (relative
    to the content's), and the blend-weighted sum over relu1_1..relu4_1 of
    (|mean - style mean|^2 + |std - style std|^2) / channels."""
    content_d = tf.reduce_mean(tf.square(out[CONTENT_LAYER] - content[CONTENT_LAYER]))
    content_d /= tf.reduce_mean(tf.square(content[CONTENT_LAYER])) + 1e-12
    style_d = 0.0
    for s, w in zip(styles, blend):
        for layer in STYLE_LAYERS:
            (m, sd), (ms, ss) = statistics(out[layer]), s[layer]
            style_d += w * float(tf.reduce_mean(tf.square(m - ms) + tf.square(sd - ss)))
    return {"content": float(content_d), "style": style_d}


class Engine:
    """VGG-19 (max pooling, as the decoders were trained) and the levels' decoders, built once.

    The feature transform is `transform(content_stats, colour(style_stats))` -> a
    `transforms.LinearMap`, from the statistics `Moments(diagonal)` gathers: WCT's whitening and
    colouring here (the style's side, its covariance^1/2, computed once per style and cached);
    AdaIN's engine sets the diagonal ones (`nst_tf.methods.adain`).
    """

    diagonal = False
    colour = staticmethod(transforms.colouring)
    transform = staticmethod(transforms.LinearMap.wct_coloured)

    def __init__(self, settings, vgg_weights):
        self.settings = settings.validate()
        used = precision.resolve(settings.precision)
        levels = settings.levels()
        layers = sorted({decoders.level_layer(level) for level in levels} | set(STYLE_LAYERS))
        self.vgg = build_vgg(vgg_weights, ENCODER_POOLING, outputs=layers, precision=used)
        self.encoders = {
            lv: tf.keras.Model(self.vgg.input, self.vgg.output[decoders.level_layer(lv)]) for lv in levels
        }
        paths = settings.decoder_paths()
        self.decoders = {
            lv: load_decoder(paths[lv], lv, vgg_weights, used, settings.train_command, settings.method)
            for lv in levels
        }
        self.style_cache = {}  # (level, style's digest) -> its colouring: a batch encodes a style once
        # Traced once per shape class (reduce_retracing: the sizes are left open after a second
        # shape): 2.4x faster than eager Keras calls for the encoder at 512^2, 1.4x for a decoder.
        self.vgg_call = tf.function(self.vgg, reduce_retracing=True)
        self.encode = {lv: tf.function(m, reduce_retracing=True) for lv, m in self.encoders.items()}
        # A style is encoded once for all levels (the deepest level's pass gives the others).
        deep = {layer: self.vgg.output[layer] for layer in map(decoders.level_layer, levels)}
        self.encode_levels = tf.function(tf.keras.Model(self.vgg.input, deep), reduce_retracing=True)
        self.decode = {lv: tf.function(m, reduce_retracing=True) for lv, m in self.decoders.items()}

    def prepare_style(self, style_images):
        return list(style_images)  # resized per content (base.prepare_inputs), so nothing to cache

    def stages(self, contents, styles, settings=None, first_stage=0):
        settings = (settings or self.settings).validate()
        yield base.OneShot(settings, lambda: self.run(contents, styles, settings))

    def run(self, contents, styles, settings):
        shown, costs = [], []
        for content, style_images in zip(contents, styles):
            inputs = base.prepare_inputs(content, style_images, settings)
            x = self.stylise(inputs, settings, masks_for(settings, len(style_images)))
            shown.append(inputs.output(x))
            judged = [self.vgg_call(tf.constant(t)) for t in judged_size(x, inputs.content)]
            styles_judged = [self.judged_style(s) for s in inputs.styles]
            costs.append(distances(*judged, styles_judged, inputs.blend))
        return np.concatenate(shown), costs

    def stylise(self, inputs, settings, masks=None, core=None):
        """The cascade: (1, H, W, 3) minus means -> the stylised image, the same size, as numpy.

        Each level in tiles when the image would not fit `max_memory` (`tile_core`): pass 1
        gathers the statistics of the whole image's features over the tiles' cores, pass 2
        transforms and decodes each tile (its margins cover the encoder's and the decoder's
        receptive fields) and keeps its core, so the tiled image is the untiled one.
        """
        x = np.asarray(inputs.content, np.float32)
        low, high = -images.MEANS, 255.0 - images.MEANS
        core = tile_core(settings, x.shape[1:3], inputs.styles) if core is None else core
        for level in settings.levels():
            x = self.level(x, level, inputs, settings, masks, core)
            x = np.clip(x, low, high)  # the next level encodes an image (not in the paper's code)
        return x

    def style_statistics(self, level, style, core):
        """A (1, h, w, 3) style image's `colour` of its feature statistics at a level. The style is
        encoded once per engine for all of its levels (one pass to the deepest, in tiles of `core`
        px with the deepest level's margin; the style image's bytes and shape are the key; the last
        STYLE_CACHE levels x styles are kept)."""
        style, key = style_key(style)
        if (level, key) not in self.style_cache:
            levels = sorted(self.encode)
            layers = [decoders.level_layer(lv) for lv in levels]
            reach = margins(levels[-1])[0]
            stats, _ = feature_statistics(self.encode_levels, layers, style, core, reach, None, self.diagonal)
            for lv, layer in zip(levels, layers):
                self.remember((lv, key), self.colour(stats[layer][0].result()))
        return self.style_cache[(level, key)]

    def judged_style(self, style):
        """A (1, h, w, 3) style image's `statistics` at the STYLE_LAYERS, for the reported
        distances: once per engine (cached with the levels' colourings)."""
        style, key = style_key(style)
        key = ("judged", key)
        if key not in self.style_cache:
            f = self.vgg_call(tf.constant(style))
            self.remember(key, {layer: statistics(f[layer]) for layer in STYLE_LAYERS})
        return self.style_cache[key]

    def remember(self, key, value):
        while len(self.style_cache) >= STYLE_CACHE:
            self.style_cache.pop(next(iter(self.style_cache)))
        self.style_cache[key] = value

    def level(self, x, level, inputs, settings, masks, core):
        """One level of the cascade on the (1, H, W, 3) numpy image `x`, in tiles of `core` px (0: whole)."""
        encode, layer = self.encode[level], decoders.level_layer(level)
        full, j = x.shape[1:3], tiling.jump(layer)
        regions = None
        if masks:
            regions = [transforms.resize_mask(m, -(-full[0] // j), -(-full[1] // j)) for m in masks]
        reach = margins(level)
        diagonal = self.diagonal
        by_layer = lambda t: {layer: encode(t)}  # noqa: E731
        stats, whole = feature_statistics(by_layer, [layer], x, core, reach[0], regions, diagonal)  # pass 1
        stats, whole = stats[layer], (whole[layer] if whole else None)
        styles = [self.style_statistics(level, s, core) for s in inputs.styles]
        # the transform and the strength blend as one affine map (`LinearMap.with_strength`)
        if regions is None:
            coloured = transforms.blend_colourings(styles, inputs.blend)
            blended = self.transform(stats[0].result(), coloured).with_strength(settings.strength)
        else:  # each region by its own statistics; a region of under 2 positions keeps the content
            maps = [
                self.transform(m.result(), s).with_strength(settings.strength) if m.n >= 2 else None
                for m, s in zip(stats, styles)
            ]
        out = np.empty_like(x)
        for box, tile in boxes(full, core, reach[0] + reach[1]):  # pass 2: transform, decode, keep the core
            f = (
                whole
                if whole is not None
                else encode(tf.constant(x[:, tile[0] : tile[1], tile[2] : tile[3]]))
            )
            f_t = f  # strength 0: the features as encoded
            if settings.strength > 0:
                rows = rows_of(f)
                if regions is None:
                    moved = blended(rows)
                else:
                    moved = rows
                    for region, transform in zip(regions, maps):
                        if transform is not None:
                            inside = window(region, tile, j, full).reshape(-1, 1)
                            moved = tf.where(inside, transform(rows), moved)
                f_t = tf.reshape(moved, f.shape)
            y = decoders.crop_to(self.decode[level](f_t), tile[1] - tile[0], tile[3] - tile[2]).numpy()
            (y0, y1, x0, x1), (ty0, _, tx0, _) = box, tile
            out[:, y0:y1, x0:x1] = y[:, y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0]
        return out


STYLE_CACHE = 32  # style statistics kept per engine ((levels + judged) x styles)
JUDGED_PIXELS = 1024 * 1024  # the reported distances of a larger output are measured at this size


def judged_size(x, content):
    """The output and the content, shrunk to JUDGED_PIXELS if larger (the distances' VGG pass is whole)."""
    h, w = x.shape[1:3]
    if h * w <= JUDGED_PIXELS:
        return x, content
    f = (JUDGED_PIXELS / (h * w)) ** 0.5
    size = (max(1, round(h * f)), max(1, round(w * f)))
    return [tf.image.resize(t, size, method="area").numpy() for t in (x, content)]


def boxes(full, core, margin):
    """`tiling.tiles` of an image of `full` (H, W) pixels, or one box of it all (core 0)."""
    return tiling.tiles(*full, core, margin) if core else [((0, full[0], 0, full[1]),) * 2]


def feature_statistics(encode, layers, image, core, margin, regions=None, diagonal=False):
    """The moments of a (1, H, W, 3) image's features at `layers` (`encode(tile)` gives {layer:
    features}) over its tiles' cores (core 0: whole), `margin` px around each: per layer, one
    `transforms.Moments(diagonal)`, or one per region (feature-resolution masks); and, untiled, the
    features {layer: ...} (for pass 2 to reuse), else None."""
    full = image.shape[1:3]
    stats = {layer: [transforms.Moments(diagonal) for _ in (regions or [None])] for layer in layers}
    f = None
    for box, tile in boxes(full, core, margin):
        f = encode(tf.constant(image[:, tile[0] : tile[1], tile[2] : tile[3]]))
        for layer in layers:
            rows = rows_of(tiling.core_slice(f[layer], layer, box, tile, full))
            if regions is None:
                stats[layer][0].add(rows)
            for moments, region in zip(stats[layer], regions or []):
                inside = window(region, box, tiling.jump(layer), full).ravel()
                if inside.any():
                    moments.add(tf.boolean_mask(rows, inside))
    return stats, (f if not core else None)


def style_key(style):
    """A (1, h, w, 3) style image, contiguous, and its cache key: its shape and bytes' digest."""
    style = np.ascontiguousarray(style)
    return style, (style.shape, hashlib.sha256(style.tobytes()).hexdigest())


def rows_of(f):
    return tf.reshape(tf.cast(f, tf.float32), [-1, f.shape[-1]])


def window(region, box, j, full):
    """The part of a feature-resolution mask (h, w) under the pixel box (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = box
    h_end = region.shape[0] if y1 == full[0] else y1 // j
    w_end = region.shape[1] if x1 == full[1] else x1 // j
    return region[y0 // j : h_end, x0 // j : w_end]


def margins(level):
    """(encoder, decoder) margins in pixels, multiples of 16: the receptive-field radius of relu<L>_1,
    and of the decoder (a 3x3 convolution reaches one position, 2^k pixels at its resolution)."""
    encoder = tiling.margin_for([decoders.level_layer(level)])
    reach, step = 0, decoders.level_stride(level)
    for _, _, _, upsample in decoders.plan(level):
        reach += step
        step //= 2 if upsample else 1
    return encoder, -(-reach // tiling.ALIGN) * tiling.ALIGN


def tile_core(settings, shape, styles):
    """The tile core in pixels for an image of `shape` (0: untiled), from the memory budget; only
    the styles' shapes (1, h, w, 3) are read.

    Raises:
      SettingError: naming max_memory, when not even the smallest tile would fit.
    """
    per_pixel = settings.bytes_per_pixel[precision.resolve(settings.precision)]
    budget = budget_bytes(settings)
    room = budget - resident_bytes()
    pixels = shape[0] * shape[1] + sum(s.shape[1] * s.shape[2] for s in styles)
    if pixels * per_pixel <= room:
        return 0
    whole = pixels * WHOLE_IMAGE_BYTES_PER_PIXEL  # tiled: only the whole images themselves
    room -= whole
    margin = sum(margins(max(settings.levels())))
    core = (int((max(room, 0) / per_pixel) ** 0.5) - 2 * margin) // tiling.ALIGN * tiling.ALIGN
    if core < MIN_TILE:
        raise SettingError(
            "max_memory",
            f"{{setting}}: {settings.title} at {shape[1]}x{shape[0]} needs about "
            f"{(resident_bytes() + whole + (MIN_TILE + 2 * margin) ** 2 * per_pixel) / 2**30:.1f} GiB "
            f"here, even in tiles; the budget is {budget / 2**30:.1f} GiB: give more",
        )
    return core


def masks_for(settings, n_styles):
    """The style masks at the working size ((H, W) in [0, 1] each) for the kept styles, or None."""
    paths = settings.mask_paths()
    if not paths:
        return None
    if len(paths) != n_styles:
        raise SettingError(
            "style_masks", f"has {len(paths)} masks for {n_styles} style images; give one each"
        )
    blend = base.blend_weights(n_styles, settings.style_blend_weights)
    masks = []
    for path, weight in zip(paths, blend):
        if weight > 0:  # base.prepare_inputs drops a style of weight 0, and so its mask
            grey = images.resize_to(images.load_image(path), settings.width, settings.height).mean(-1)
            masks.append(grey / 255.0)
    return masks


class WCT(base.Method):
    """Li et al.'s universal style transfer: feature transforms and trained decoders, one pass."""

    name = "wct"
    Settings = WCTSettings
    presets = PRESETS
    cost_names = ("content", "style")

    def engine(self, settings, vgg_weights):
        return Engine(settings, vgg_weights)

    def files(self, settings):
        return {f"decoder_relu{level}_1": path for level, path in settings.decoder_paths().items()}

    def group_limit(self, settings):
        return None  # each content is transformed on its own; any number go through one stage


METHOD = WCT()
