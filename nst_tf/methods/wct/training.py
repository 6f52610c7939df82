"""What `python -m nst_tf.train --method wct --level L` trains: the decoder that inverts relu<L>_1.

The paper's loss: a photo x is encoded to f = VGG(x) at relu<L>_1, decoded to y = D(f), and
    total = mean((y - x)^2) + FEATURE_WEIGHT * mean((VGG(y) - f)^2) [+ grid_weight * grid(y - x)]
pixels and features both in the encoder's units (RGB 0-255 minus the means; post-ReLU activations),
the encoder frozen. No style image is involved, so the decoder serves any style.

The grid term is ours (`nst_tf.nets.decoder.stride_grid`): a decoder that upsamples 2^(L-1)x by
nearest neighbours leaves, where it has to invent detail (foliage, bristles), a pattern locked to
that stride, the lattice docs/fast.md shows; the pixel loss weighs it by its tiny share of the error. The term
weighs that pattern on its own. On the shipped relu4_1 decoder, 600 steps at GRID_WEIGHT (128^2
crops, from the decoder shipped without it) cut the lattice on docs/fast.md's 8 held-out pictures
from 22.3x their own power at the stride's harmonics to 5.1x (`bench/decoder_floor.py`) and
raised the reconstruction of the 55 held-out photos 22.74 -> 23.27 dB. relu1_1's decoder does not
upsample: it has no grid term.
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


def reconstruction_losses(x, y, f, f_y, feature_weight=FEATURE_WEIGHT, grid_weight=0.0, stride=1):
    """{total, pixel, feature[, grid]} for an image x, its decoding y, their features f and f_y.

    pixel = mean((y - x)^2) over all pixels and channels; feature = mean((f_y - f)^2);
    grid = `decoders.stride_grid`(y - x, stride), only where grid_weight > 0;
    total = pixel + feature_weight * feature + grid_weight * grid.
    """
    residual = tf.cast(y, tf.float32) - tf.cast(x, tf.float32)
    pixel = tf.reduce_mean(tf.square(residual))
    feature = tf.reduce_mean(tf.square(tf.cast(f_y, tf.float32) - tf.cast(f, tf.float32)))
    out = {"total": pixel + feature_weight * feature, "pixel": pixel, "feature": feature}
    if grid_weight > 0:
        out["grid"] = decoders.stride_grid(residual, stride)
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

    def grid_weight(self, options):
        """The run's grid weight: --grid_weight, or by default GRID_WEIGHT (0 for relu1_1)."""
        if options.grid_weight is not None:
            return options.grid_weight
        return GRID_WEIGHT if options.level != 1 else 0.0

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
        if self.grid_weight(options) > 0:
            if options.level == 1:
                raise SettingError(
                    "grid_weight",
                    "relu1_1's decoder does not upsample, so it leaves no grid: give 0",
                    options.grid_weight,
                )
            decoders.check_grid_crop(options.crop, decoders.level_stride(options.level))
        return f"wct_relu{options.level}_1"

    def build(self, options, vgg_weights, precision):
        self.run_name(options)
        return DecoderTraining(options.level, vgg_weights, precision, self.grid_weight(options))


TASK = Task()
