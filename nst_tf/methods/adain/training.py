"""What `python -m nst_tf.train --method adain` trains: the decoder of AdaIN's aligned relu4_1 features.

The paper's loss, each term relative to its target's energy so that one style weight means the same
for any VGG-19 weights and units (ours: RGB 0-255 minus the means, post-ReLU activations; the
reference codes' lambda of 1e-2 to 10 is in other VGGs' units). A photo c and a style s are encoded,
t = AdaIN(relu4_1(c), relu4_1(s)), the decoder gives g = D(t), and

    content = mean((relu4_1(g) - t)^2) / mean(t^2)
    style   = sum over relu1_1 ... relu4_1 of
              (mean((mu(g) - mu(s))^2) + mean((sigma(g) - sigma(s))^2)) / mean(relu_l(s)^2)
    grid    = stride_grid(g, 8) / mean(c^2)        (only where grid_weight > 0; ours, not the paper's)
    total   = content + style_weight x style + grid_weight x grid

the encoder frozen, mu and sigma each channel's mean and standard deviation over positions, and
`nst_tf.nets.decoder.stride_grid` the part of the decoding that repeats with the decoder's
8-pixel stride (the lattice of docs/fast.md), relative to the photos' energy. It weighs a style's
own texture of exactly that period too, a pattern no held-out style of docs/fast.md has.

The default style weight, 65, is the reference code's lambda of 10 carried over: its VGG is
normalised (each channel's mean activation 1), and on one batch of 8 training photos and 8 styles
(crops of 256) the unstylised photos' style terms sum to 62 in those units and 2.06 in ours, the
relu4_1 energy a content term is divided by here being 4.65 there: 10 x (62 / 2.06) / 4.65 = 65.
"""

import numpy as np
import tensorflow as tf

from nst_tf import images
from nst_tf.data import pipeline
from nst_tf.errors import SettingError
from nst_tf.methods.adain.config import DECODER_FILE, LEVEL
from nst_tf.methods.adain.transforms import adaptive_instance_normalization, statistics_distance
from nst_tf.methods.wct.config import ENCODER_POOLING
from nst_tf.nets import decoder as decoders
from nst_tf.nets.vgg import build_vgg
from nst_tf.train.options import STYLE_WEIGHT

STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")  # relu1_1 ... relu4_1
CONTENT_LAYER = decoders.level_layer(LEVEL)
PREVIEW_STYLES = 4
GRID_WEIGHT = 1000.0  # --grid_weight's default: the term starts near a tenth of the total (8 photos)


def adain_losses(g_f, t, s_f, style_weight, grid=None, grid_weight=GRID_WEIGHT):
    """{total, content, style[, grid]} from the decoding's features `g_f` and the style's `s_f`
    ({layer: (n, H, W, C)}), the AdaIN target `t` and the decoding's `relative_grid` (None: no
    grid term) (see the module docstring)."""
    t = tf.cast(t, tf.float32)
    g4 = tf.cast(g_f[CONTENT_LAYER], tf.float32)
    content = tf.reduce_mean(tf.square(g4 - t)) / (tf.reduce_mean(tf.square(t)) + 1e-12)
    style = tf.add_n(
        [
            statistics_distance(g_f[layer], s_f[layer])
            / (tf.reduce_mean(tf.square(tf.cast(s_f[layer], tf.float32))) + 1e-12)
            for layer in STYLE_LAYERS
        ]
    )
    out = {"total": content + style_weight * style, "content": content, "style": style}
    if grid is not None:
        out["grid"], out["total"] = grid, out["total"] + grid_weight * grid
    return out


def relative_grid(g, c):
    """`stride_grid` of decodings g at the decoder's stride, over the mean energy of photos c."""
    energy = tf.reduce_mean(tf.square(tf.cast(c, tf.float32))) + 1e-12
    return decoders.stride_grid(g, decoders.level_stride(LEVEL)) / energy


class DecoderTraining:
    """The AdaIN decoder (relu4_1's architecture), the frozen encoder to relu4_1 and the loss."""

    data_kinds = ("photo", "style")  # a batch of each a step (`nst_tf.train.loop`)

    def __init__(
        self,
        vgg_weights,
        precision="float32",
        style_weight=STYLE_WEIGHT,
        preview_styles=None,
        grid_weight=0.0,
    ):
        self.vgg_weights, self.style_weight, self.grid_weight = vgg_weights, style_weight, grid_weight
        self.cost_names = ("total", "content", "style") + (("grid",) if grid_weight > 0 else ())
        layers = list(STYLE_LAYERS)
        self.encoder = build_vgg(vgg_weights, ENCODER_POOLING, outputs=layers, precision=precision)
        self.network = decoders.build_decoder(LEVEL, decoders.widths_of(vgg_weights.layers), precision)
        self.model_file = DECODER_FILE
        self.preview_styles = preview_styles  # (k, H, W, 3) minus means: the styles of the previews

    def encode(self, x):
        return {k: tf.stop_gradient(v) for k, v in self.encoder(x).items()}

    def stylise(self, c, s):
        """AdaIN of contents c with styles s ((n, H, W, 3) minus means each): the decoding, c's size."""
        t = adaptive_instance_normalization(self.encode(c)[CONTENT_LAYER], self.encode(s)[CONTENT_LAYER])
        return decoders.crop_to(self.network(t), c.shape[1], c.shape[2])

    def losses(self, c, s):
        c_f, s_f = self.encode(c), self.encode(s)
        t = adaptive_instance_normalization(c_f[CONTENT_LAYER], s_f[CONTENT_LAYER])
        g = decoders.crop_to(self.network(t, training=True), c.shape[1], c.shape[2])  # training's layers
        grid = relative_grid(g, c) if self.grid_weight > 0 else None
        return adain_losses(self.encoder(g), t, s_f, self.style_weight, grid, self.grid_weight)

    def reconstruct(self, x):
        """What the previews show below each held-out photo: it in the i-th held-out style."""
        k = len(self.preview_styles)
        styles = tf.constant(np.stack([self.preview_styles[i % k] for i in range(len(x))]))
        return self.stylise(tf.convert_to_tensor(x, tf.float32), styles)

    def evaluate(self, photos, styles):
        """How the decoder does on held-out pairs (each photo with each style, uint8 images): the mean
        relative content and style losses of the training, and the strength-0 reconstruction PSNR
        of the photos (what `nst_tf.train.ship` records)."""
        from nst_tf.train.ship import psnr

        content, style, rebuilt = [], [], []
        for photo in photos:
            c = tf.constant(images.reshape_and_normalize_image(photo))
            c_f = self.encode(c)
            y = decoders.crop_to(self.network(c_f[CONTENT_LAYER]), c.shape[1], c.shape[2])[0].numpy()
            rebuilt.append(psnr(photo, np.clip(np.round(y + images.MEANS[0]), 0, 255).astype(np.uint8)))
            for image in styles:
                s_f = self.encode(tf.constant(images.reshape_and_normalize_image(image)))
                t = adaptive_instance_normalization(c_f[CONTENT_LAYER], s_f[CONTENT_LAYER])
                g = decoders.crop_to(self.network(t), c.shape[1], c.shape[2])
                losses = adain_losses(self.encoder(g), t, s_f, self.style_weight)
                content.append(float(losses["content"]))
                style.append(float(losses["style"]))
        return {
            "content": float(np.mean(content)),
            "style": float(np.mean(style)),
            "strength0_psnr_db": float(np.mean(rebuilt)),
            "pairs": len(content),
        }

    def encoder_record(self):
        w = self.vgg_weights
        return {"source": w.source, "path": str(w.path), "sha256": w.sha256, "pooling": ENCODER_POOLING}

    def describe(self):
        return {
            "network": "AdaIN decoder (relu4_1's architecture, after AdaIN at conv4_1 in nst_tf.nets.vgg)",
            "level": LEVEL,
            "parameters": int(self.network.count_params()),
            "loss": f"relative relu4_1 distance to the AdaIN target + {self.style_weight:g} x relative "
            "channel mean/std distance to the style at relu1_1..relu4_1"
            + (
                f" + {self.grid_weight:g} x the relative {decoders.level_stride(LEVEL)}-px grid"
                if self.grid_weight > 0
                else ""
            ),
            "style_weight": self.style_weight,
            "encoder": self.encoder_record(),
        }

    def save(self, path, meta, storage="float32"):
        decoders.write_decoder(
            self.network,
            path,
            {"method": "adain", "level": LEVEL, "encoder": self.encoder_record(), **meta},
            storage,
        )

    def load(self, path):
        """The network's weights from a decoder file of relu4_1's architecture (AdaIN's, or WCT's
        relu4_1 decoder to start from)."""
        loaded = decoders.load_decoder(path, LEVEL, decoders.widths_of(self.vgg_weights.layers))
        self.network.set_weights(loaded.get_weights())


def preview_styles(manifest, crop, n=PREVIEW_STYLES):
    """Up to n held-out styles of the manifest (the training ones if none is held out), crop x crop."""
    try:
        paths = pipeline.manifest_files(manifest, "style", "heldout")
    except SettingError:
        paths = pipeline.manifest_files(manifest, "style")
    crops = [images.resize_to(images.load_image(p), crop, crop) for p in paths[:n]]
    return np.stack(crops).astype(np.float32) - images.MEANS[0]


class Task:
    """`nst_tf.train.tasks`' entry for AdaIN: one decoder, trained on photos and styles."""

    def grid_weight(self, options):
        """The run's grid weight: --grid_weight, or by default GRID_WEIGHT."""
        return GRID_WEIGHT if options.grid_weight is None else options.grid_weight

    def run_name(self, options):
        if options.level not in (None, LEVEL):
            why = "AdaIN has one decoder, after relu4_1: leave {setting} out"
            raise SettingError("level", why, options.level)
        if self.grid_weight(options) > 0:
            decoders.check_grid_crop(options.crop, decoders.level_stride(LEVEL))
        return "adain"

    def build(self, options, vgg_weights, precision):
        self.run_name(options)
        try:
            styles = preview_styles(options.data, options.crop)
        except SettingError as e:
            raise SettingError("data", f"{{setting}}: AdaIN trains on styles too: {e.why}", options.data)
        grid_weight = self.grid_weight(options)
        return DecoderTraining(vgg_weights, precision, options.style_weight, styles, grid_weight=grid_weight)


TASK = Task()
