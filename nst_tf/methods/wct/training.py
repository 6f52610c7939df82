"""What `python -m nst_tf.train --method wct --level L` trains: the decoder that inverts relu<L>_1.

The paper's loss: a photo x is encoded to f = VGG(x) at relu<L>_1, decoded to y = D(f), and
    total = mean((y - x)^2) + FEATURE_WEIGHT * mean((VGG(y) - f)^2) [+ grid_weight * grid(y - x)]
pixels and features both in the encoder's units (RGB 0-255 minus the means; post-ReLU activations),
the encoder frozen. No style image is involved, so the decoder serves any style.

The grid term is ours (`stride_grid`): a decoder that upsamples 2^(L-1)x by nearest neighbours
leaves, where it has to invent detail (foliage, bristles), a pattern locked to that stride, the
lattice docs/fast.md shows; the pixel loss weighs it by its tiny share of the error. The term
weighs that pattern on its own. On the relu4_1 decoder, 200 steps at GRID_WEIGHT (128^2 crops,
from the decoder shipped without it) cut the grid's power on held-out photos from 16.9x the
photos' own at those frequencies to 3.1x and raised their reconstruction 22.4 -> 23.1 dB.
"""

import tensorflow as tf

from nst_tf.errors import SettingError
from nst_tf.methods.wct.config import ENCODER_POOLING
from nst_tf.nets import decoder as decoders
from nst_tf.nets.vgg import build_vgg
from nst_tf.train.options import TrainOptions

ADAIN_ONLY = ("style_weight", "style_hue")  # settings of AdaIN's training a WCT run refuses

FEATURE_WEIGHT = 1.0  # the 1:1 pixel and feature loss
GRID_WEIGHT = 1000.0  # --grid_weight's default for WCT (0 before 2026-12-08; see the docstring)


def stride_grid(image, stride):
    """Mean square of the part of `image` ((n, H, W, C), float32) that repeats every `stride`
    pixels: of its detail (the image less its stride x stride box mean, so that a smooth gradient
    counts for nothing), each of the stride x stride phases' mean over the blocks, less the mean of
    the phases. A photograph's phases average alike (it has next to none); a nearest-neighbour
    decoder's lattice is exactly such a part (a zero-mean pattern of the period is counted whole).
    """
    image = tf.cast(image, tf.float32)
    low = tf.nn.avg_pool2d(image, stride, 1, "VALID")
    n, h, w, c = low.shape
    detail = image[:, stride // 2 : stride // 2 + h, stride // 2 : stride // 2 + w] - low
    h, w = h // stride * stride, w // stride * stride
    blocks = tf.reshape(detail[:, :h, :w], (n, h // stride, stride, w // stride, stride, c))
    phases = tf.reduce_mean(blocks, axis=(1, 3))  # (n, stride, stride, c)
    return tf.reduce_mean(tf.square(phases - tf.reduce_mean(phases, axis=(1, 2), keepdims=True)))


def reconstruction_losses(x, y, f, f_y, feature_weight=FEATURE_WEIGHT, grid_weight=0.0, stride=1):
    """{total, pixel, feature[, grid]} for an image x, its decoding y, their features f and f_y.

    pixel = mean((y - x)^2) over all pixels and channels; feature = mean((f_y - f)^2);
    grid = `stride_grid`(y - x, stride), only where grid_weight > 0;
    total = pixel + feature_weight * feature + grid_weight * grid.
    """
    pixel = tf.reduce_mean(tf.square(tf.cast(y, tf.float32) - tf.cast(x, tf.float32)))
    feature = tf.reduce_mean(tf.square(tf.cast(f_y, tf.float32) - tf.cast(f, tf.float32)))
    out = {"total": pixel + feature_weight * feature, "pixel": pixel, "feature": feature}
    if grid_weight > 0:
        out["grid"] = stride_grid(tf.cast(y, tf.float32) - tf.cast(x, tf.float32), stride)
        out["total"] += grid_weight * out["grid"]
    return out


class DecoderTraining:
    """The relu<level>_1 decoder, the frozen encoder and the reconstruction loss."""

    def __init__(self, level, vgg_weights, precision="float32", grid_weight=0.0):
        self.level, self.layer = level, decoders.level_layer(level)
        self.grid_weight, self.stride = grid_weight, decoders.level_stride(level)
        self.cost_names = ("total", "pixel", "feature") + (("grid",) if grid_weight > 0 else ())
        self.vgg_weights = vgg_weights
        self.encoder = build_vgg(vgg_weights, ENCODER_POOLING, outputs=[self.layer], precision=precision)
        widths = decoders.widths_of(vgg_weights.layers)
        self.network = decoders.build_decoder(level, widths, precision)
        self.model_file = decoders.decoder_file(level)

    def encode(self, x):
        return self.encoder(x)[self.layer]

    def reconstruct(self, x):
        """The decoding of x's relu<level>_1 features, cropped to x's size: (n, H, W, 3)."""
        return decoders.crop_to(self.network(self.encode(x)), x.shape[1], x.shape[2])

    def losses(self, x):
        f = tf.stop_gradient(self.encode(x))
        y = decoders.crop_to(self.network(f, training=True), x.shape[1], x.shape[2])  # training's layers
        return reconstruction_losses(x, y, f, self.encode(y), FEATURE_WEIGHT, self.grid_weight, self.stride)

    def encoder_record(self):
        w = self.vgg_weights
        return {"source": w.source, "path": str(w.path), "sha256": w.sha256, "pooling": ENCODER_POOLING}

    def describe(self):
        return {
            "network": f"WCT decoder after relu{self.level}_1 ({self.layer} in nst_tf.nets.vgg)",
            "level": self.level,
            "parameters": int(self.network.count_params()),
            "loss": f"mean squared pixel error + {FEATURE_WEIGHT:g} x mean squared {self.layer} error"
            + (f" + {self.grid_weight:g} x its {self.stride}-px grid" if self.grid_weight > 0 else ""),
            "encoder": self.encoder_record(),
        }

    def save(self, path, meta, storage="float32"):
        decoders.write_decoder(
            self.network,
            path,
            {"method": "wct", "level": self.level, "encoder": self.encoder_record(), **meta},
            storage,
        )

    def load(self, path):
        """The network's weights from a decoder file (any storage): this level's whole decoder, or a
        lower level's as the tail (`decoders.load_tail`). Returns the layers loaded, when only some."""
        widths = decoders.widths_of(self.vgg_weights.layers)
        if decoders.read_meta(path).get("level", self.level) < self.level:
            return decoders.load_tail(self.network, self.level, path, widths)
        loaded = decoders.load_decoder(path, self.level, widths)
        self.network.set_weights(loaded.get_weights())
        return None


class Task:
    """`nst_tf.train.tasks`' entry for WCT: one decoder per run, chosen by `options.level`."""

    grid_weight = GRID_WEIGHT  # the default of a new run's --grid_weight

    def run_name(self, options):
        if options.level is None:
            raise SettingError(
                "level", "{setting} is required: the decoder's level, 1..5 (after relu1_1 ... relu5_1)"
            )
        if options.level not in decoders.LEVELS:
            raise SettingError("level", "must be 1..5 (the decoder after relu1_1 ... relu5_1)", options.level)
        for name in ADAIN_ONLY:  # WCT's decoders train on photos alone: no style loss, no styles
            if getattr(options, name) != getattr(TrainOptions, name):
                raise SettingError(name, "{setting} is AdaIN's; WCT's decoders train on photos alone")
        return f"wct_relu{options.level}_1"

    def build(self, options, vgg_weights, precision):
        self.run_name(options)
        return DecoderTraining(options.level, vgg_weights, precision, options.grid_weight or 0.0)


TASK = Task()
