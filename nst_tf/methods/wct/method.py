"""WCT on the method seam: `--method wct` whitens and colours VGG-19 features, relu5_1 to relu1_1.

At each level of `wct_levels` (deepest first) the current image is encoded, its features take the
style's mean and covariance (`transforms`; several styles by their blend weights, or each in its
mask's region), are blended with the content's by `strength`, and are decoded back to pixels by the
level's trained decoder; the next level starts from that image (the paper's cascade).
"""

import numpy as np
import tensorflow as tf

from nst_tf import images, precision
from nst_tf.errors import SettingError, WeightsError
from nst_tf.methods import base
from nst_tf.methods.wct import transforms
from nst_tf.methods.wct.config import ENCODER_POOLING, PRESETS, WCTSettings, train_command
from nst_tf.nets import decoder as decoders
from nst_tf.nets.vgg import build_vgg

STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")  # what the reported distances compare

CONTENT_LAYER = "conv4_1"


def load_decoder(path, level, vgg_weights, used):
    """A level's trained decoder, refused (SettingError naming `decoder`) if made for another encoder."""
    try:
        decoders.verify(path)  # against its folder's models.json, before anything is read
        meta = decoders.read_meta(path)
        encoder = meta.get("encoder", {})
        if encoder.get("sha256") != vgg_weights.sha256 or encoder.get("pooling") != ENCODER_POOLING:
            theirs, ours = str(encoder.get("sha256"))[:12], vgg_weights.sha256[:12]
            why = f"{path} was trained for other VGG-19 weights (sha256 {theirs}, these {ours})"
            how = f"{train_command(level, path.parent)} --weights {vgg_weights.path}"
            raise SettingError("decoder", f"{{setting}}: {why}; train one for them with: {how}")
        return decoders.load_decoder(path, level, decoders.widths_of(vgg_weights.layers), used)
    except WeightsError as e:
        raise SettingError("decoder", f"{{setting}}: {e}")


def statistics(f):
    """Each channel's mean and standard deviation over the positions of (1, H, W, C) features."""
    mean, var = tf.nn.moments(f, axes=[0, 1, 2])
    return mean, tf.sqrt(var)


def distances(out, content, styles, blend):
    """{content, style} of VGG-19 features {layer: (1, H, W, C)} of a result, its content and styles:
    the relu4_1 distance to the content (relative to the content's), and the blend-weighted sum over
    relu1_1..relu4_1 of (|mean - style mean|^2 + |std - style std|^2) / channels."""
    content_d = tf.reduce_mean(tf.square(out[CONTENT_LAYER] - content[CONTENT_LAYER]))
    content_d /= tf.reduce_mean(tf.square(content[CONTENT_LAYER])) + 1e-12
    style_d = 0.0
    for s, w in zip(styles, blend):
        for layer in STYLE_LAYERS:
            (m, sd), (ms, ss) = statistics(out[layer]), statistics(s[layer])
            style_d += w * float(tf.reduce_mean(tf.square(m - ms) + tf.square(sd - ss)))
    return {"content": float(content_d), "style": style_d}


class Engine:
    """VGG-19 (max pooling, as the decoders were trained) and the levels' decoders, built once."""

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
        self.decoders = {lv: load_decoder(paths[lv], lv, vgg_weights, used) for lv in levels}

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
            judged = [self.vgg(t) for t in (x, inputs.content, *inputs.styles)]
            costs.append(distances(judged[0], judged[1], judged[2:], inputs.blend))
        return np.concatenate(shown), costs

    def transform(self, f_c, f_ss, blend, masks):
        """The content's features at one level with the styles' statistics (blended, or in regions)."""
        if masks:
            return transforms.masked(f_c, f_ss, masks)
        return transforms.blend_styles(f_c, f_ss, blend)

    def stylise(self, inputs, settings, masks=None):
        """The cascade: (1, H, W, 3) minus means -> the stylised image, the same size, as numpy."""
        x = tf.constant(inputs.content)
        height, width = x.shape[1:3]
        low, high = -images.MEANS, 255.0 - images.MEANS
        for level in settings.levels():
            encode = self.encoders[level]
            f_c = encode(x)
            f = self.transform(f_c, [encode(s) for s in inputs.styles], inputs.blend, masks)
            y = decoders.crop_to(
                self.decoders[level](transforms.blend(f, f_c, settings.strength)), height, width
            )
            x = tf.clip_by_value(y, low, high)  # the next level encodes an image (not in the paper's code)
        return x.numpy()


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
