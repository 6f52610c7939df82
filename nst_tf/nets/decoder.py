"""WCT's decoders: VGG-19 mirrored from relu<L>_1 back to pixels (Keras), and their weights files."""

import json
from pathlib import Path

import numpy as np
import tensorflow as tf

from nst_tf.errors import WeightsError
from nst_tf.files import atomic_write, sha256_of
from nst_tf.nets.layers import BLOCKS, CONV_LAYERS

LEVELS = (1, 2, 3, 4, 5)
VGG_WIDTHS = {block: width for block, _, width in BLOCKS}  # {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
FORMAT = "nst_tf-decoder-1"


def level_layer(level):
    """The encoder layer a level's decoder starts from: `conv<L>_1` (post-ReLU: the paper's relu<L>_1)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS} (relu1_1 ... relu5_1), not {level!r}")
    return f"conv{level}_1"


def widths_of(layers):
    """{block: channels} of VGG-19 weights in canonical form (`VGGWeights.layers`)."""
    return {block: layers[f"conv{block}_1"][0].shape[-1] for block, _, _ in BLOCKS}


def plan(level, widths=None):
    """The decoder's convolutions, in order: (name, in channels, out channels, upsample after).

    The encoder's layers from conv<L>_1 down to conv1_1, each reversed (out -> in channels), named
    `dec<b>_<c>` after the layer it mirrors; a 2x upsampling follows the mirror of every conv<b>_1
    with b > 1 (the encoder pools before it).
    """
    level_layer(level)
    widths = widths or VGG_WIDTHS
    mirrored = CONV_LAYERS[: CONV_LAYERS.index(f"conv{level}_1") + 1][::-1]
    steps = []
    for name in mirrored:
        block, conv = int(name[4]), int(name[6])
        into = 3 if name == "conv1_1" else widths[block - 1] if conv == 1 else widths[block]
        steps.append((f"dec{block}_{conv}", widths[block], into, conv == 1 and block > 1))
    return steps


class ReflectionPad2D(tf.keras.layers.Layer):
    """Pad height and width by `pad` on each side, reflecting (the paper's decoders)."""

    def __init__(self, pad=1, **kwargs):
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, x):
        p = self.pad
        return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda side: None if side is None else side + 2 * self.pad  # noqa: E731
        return (n, grow(h), grow(w), c)


def build_decoder(level, widths=None, precision="float32"):
    """The decoder after relu<level>_1: the encoder mirrored, as a Keras functional model.

    3x3 convolutions on reflection-padded input, each followed by a ReLU but the last (to 3
    channels, linear), and a nearest-neighbour 2x upsampling where the encoder pools. With VGG-19's
    widths it has 1,731 / 112,451 / 555,075 / 3,505,219 / 12,944,451 parameters for levels 1..5.

    Args:
      level: 1..5, the encoder layer relu1_1 ... relu5_1 (`conv<L>_1` in `nets.vgg`) it inverts.
      widths: {block: channels} of the encoder (`widths_of(weights.layers)`); default VGG-19's.
      precision: "float32" or "bfloat16" (mixed: bfloat16 compute, float32 weights; the last
        convolution stays float32, as the encoder's first does).

    Returns:
      keras.Model mapping float32 features (n, h, w, C_L) to a float32 image (n, h * 2^(L-1),
      w * 2^(L-1), 3) in the encoder's input space: RGB minus `nst_tf.images.MEANS`. An encoder
      input of odd size gives a larger decoding: crop it (`crop_to`).
    """
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be float32 or bfloat16, not {precision!r}")
    policy = "mixed_bfloat16" if precision == "bfloat16" else "float32"
    steps = plan(level, widths)
    features = tf.keras.Input(shape=(None, None, steps[0][1]), name="features")
    x = features
    for name, _, out, upsample in steps:
        last = name == "dec1_1"
        dtype = "float32" if last else policy
        x = ReflectionPad2D(name=f"{name}_pad", dtype=dtype)(x)
        x = tf.keras.layers.Conv2D(out, 3, activation=None if last else "relu", name=name, dtype=dtype)(x)
        if upsample:
            x = tf.keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up", dtype=policy)(x)
    return tf.keras.Model(features, x, name=f"decoder_relu{level}_1")


def crop_to(image, height, width):
    """The top-left (height, width) of a decoded (n, H', W', 3) image (H' >= height, W' >= width)."""
    return image[:, :height, :width, :]


def decoder_file(level):
    """The file name of a level's decoder weights: `decoder_relu<L>_1.npz`."""
    level_layer(level)
    return f"decoder_relu{level}_1.npz"


STORAGES = ("float32", "float16", "int8")
CHECKSUMS = "models.json"  # a models folder's record: {"files": {name: {"sha256": ..., ...}}, ...}


def quantise(kernel):
    """An int8 kernel and its float32 scale per output channel (symmetric, like the embedded VGG)."""
    scale = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0) / 127.0  # (C_out,)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    return np.clip(np.round(kernel / scale), -127, 127).astype(np.int8), scale


def write_decoder(model, path, meta, storage="float32"):
    """Write a decoder's weights and `meta` (a JSON-able dict: level, encoder, ...) to `path` atomically.

    Args:
      storage: how the convolution kernels are kept: "float32", "float16" (half the size), or
        "int8" (a quarter: int8 with a float32 scale per output channel); biases stay float32.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, not {storage!r}")
    arrays = {}
    for layer in model.layers:
        for weight in layer.weights:
            key, value = f"{layer.name}/{weight.name}", np.asarray(weight.numpy(), np.float32)
            if value.ndim < 4 or storage == "float32":
                arrays[key] = value
            elif storage == "float16":
                arrays[key] = value.astype(np.float16)
            else:
                arrays[key], arrays[f"{key}@scale"] = quantise(value)
    arrays["meta"] = np.array(json.dumps({"format": FORMAT, **meta, "storage": storage}))

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez(f, **arrays)

    atomic_write(path, write)


def stored_value(z, key):
    """A weight of an open decoder file as float32, whatever its storage."""
    value = z[key]
    if value.dtype == np.int8:
        return value.astype(np.float32) * z[f"{key}@scale"]
    return value.astype(np.float32)


def verify(path):
    """Check a decoder file against its folder's `models.json` when the folder has one.

    A folder of shipped models (the package's, or one a user made with `nst_tf.train.ship`) lists
    each file's SHA-256; a folder without the record (`nst_tf.train --out`) is not checked.

    Raises:
      WeightsError: the file is not listed, or its SHA-256 differs from the record's.
    """
    path = Path(path)
    record_path = path.parent / CHECKSUMS
    if not record_path.is_file():
        return
    try:
        listed = json.loads(record_path.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{record_path}: unreadable ({type(e).__name__}: {e}); reinstall nst_tf")
    if path.name not in listed:
        raise WeightsError(
            f"{path}: not listed in {record_path}; remove it, or ship it with nst_tf.train.ship"
        )
    digest = sha256_of(path)
    if digest != listed[path.name].get("sha256"):
        raise WeightsError(
            f"{path}: SHA-256 {digest[:12]}... differs from {record_path}'s "
            f"{str(listed[path.name].get('sha256'))[:12]}...: the file is damaged; reinstall nst_tf"
        )


def read_meta(path):
    """The `meta` dict written with a decoder file.

    Raises:
      WeightsError: `path` is not a decoder file of this project.
    """
    try:
        with np.load(str(path), allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise WeightsError(f"{path}: not a readable decoder file ({type(e).__name__}: {e})")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a decoder file of nst_tf (format {FORMAT})")
    return meta


def load_tail(model, level, path, widths=None):
    """Start `model`, the relu<level>_1 decoder, from a lower level's decoder file: its tail.

    The decoder after relu<L'>_1 (L' below `model`'s level) is exactly the last layers of a deeper
    one, the same names and shapes (`dec<L'>_1` ... `dec1_1`): those are loaded, the deeper layers
    keep their initial weights. A deeper decoder trained from there starts from a working path
    from relu<L'>_1-like features to pixels (a warm start; the reference trains each from scratch).

    Returns:
      The names of the layers loaded, in order.

    Raises:
      WeightsError: the file is unreadable, fails its folder's checksum, is not of a lower level,
        or its weights do not fit.
    """
    lower_level = read_meta(path).get("level")
    if lower_level not in LEVELS or lower_level >= level:
        raise WeightsError(
            f"{Path(path)}: not a decoder of a level below {level} (its level: {lower_level!r})"
        )
    lower = load_decoder(path, lower_level, widths)
    names = [name for name, *_ in plan(lower_level, widths)]
    for name in names:
        model.get_layer(name).set_weights(lower.get_layer(name).get_weights())
    return names


def load_decoder(path, level, widths=None, precision="float32"):
    """`build_decoder(level, widths, precision)` with the weights of the file `path`.

    Raises:
      WeightsError: the file is unreadable, fails its folder's checksum (`verify`), or its weights
        do not fit that decoder.
    """
    model = build_decoder(level, widths, precision)
    verify(path)
    stored_level = read_meta(path).get("level", level)
    if stored_level != level:  # a deeper decoder's file holds a shallower one's layers too: refuse it
        raise WeightsError(f"{Path(path)}: not the relu{level}_1 decoder (it is relu{stored_level}_1's)")
    try:
        with np.load(str(path), allow_pickle=False) as z:
            for layer in model.layers:
                for weight in layer.weights:
                    value = stored_value(z, f"{layer.name}/{weight.name}")
                    if value.shape != tuple(weight.shape):
                        raise ValueError(f"{layer.name} has {value.shape}, expected {tuple(weight.shape)}")
                    weight.assign(value)
    except (OSError, ValueError, KeyError) as e:
        raise WeightsError(f"{Path(path)}: not the relu{level}_1 decoder of this encoder ({e})")
    return model
