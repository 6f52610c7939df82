"""WCT's and AdaIN's decoders as Keras models: VGG-19 mirrored from relu<L>_1 back to pixels (the plan
and the weights files: `nst_tf.nets.decoder_files`)."""

from pathlib import Path

import tensorflow as tf

from nst_tf.errors import SettingError, WeightsError
from nst_tf.nets.decoder_files import (  # noqa: F401  (the plan and files, re-exported)
    CHECKSUMS,
    FORMAT,
    LEVELS,
    STORAGES,
    VGG_WIDTHS,
    carried_stages,
    decoder_file,
    level_layer,
    level_stride,
    plan,
    quantise,
    read_meta,
    stored_value,
    tail_weights,
    verify,
    widths_of,
    write_arrays,
)


class ReflectionPad2D(tf.keras.layers.Layer):
    """Pad height and width by `pad` on each side, reflecting (the paper's decoders)."""

    def __init__(self, pad=1, **kwargs):
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, x, training=None):
        if training:  # tf.pad's kernels, forward and backward: 13% faster than `reflect`'s in a training step
            p = self.pad
            return tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
        return reflect(x, self.pad)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = lambda side: None if side is None else side + 2 * self.pad  # noqa: E731
        return (n, grow(h), grow(w), c)


# Which 3x3 rows (and columns) of a kernel fall on each of a low-resolution pixel's two neighbours,
# for the two output rows (columns) an upsampled pixel becomes: (phase, tap, kernel row). Row 2i of the
# upsampled image sees rows 2i-1, 2i, 2i+1 = low rows i-1, i, i; row 2i+1 sees i, i, i+1.
_TAPS = ((1, 0, 0), (0, 1, 1)), ((1, 1, 0), (0, 0, 1))


class UpsampleConv2D(tf.keras.layers.Conv2D):
    """Nearest-neighbour 2x upsampling, reflection padding by 1 and a 3x3 convolution, in one layer.

    The same numbers as the three layers (up to rounding), with 16/36 of the multiplications: each
    output pixel of the upsampled image sees a 3x3 window that covers only 2x2 pixels of the input,
    so the convolution splits into four 2x2 ones on the input (one per output phase), their
    kernels the 3x3 kernel's taps summed, interleaved by `depth_to_space`. Reflecting the upsampled
    image by one pixel repeats the input's edge, so the input is padded `SYMMETRIC`. The weights
    are Conv2D's, `kernel` (3, 3, C_in, C_out) and `bias`: the decoders' files load unchanged.
    1.3-1.7x faster than the three layers at a 512^2 output in bfloat16 on a 2-core EPYC, WCT's five
    levels 1.05x, AdaIN 1.05x (bench/README.md); a training step (128^2 crops) no faster.
    """

    def __init__(self, filters, **kwargs):
        kwargs.setdefault("autocast", False)  # the taps are summed in float32, then cast
        super().__init__(filters, 3, **kwargs)

    def call(self, x):
        h, w = tf.shape(x)[1], tf.shape(x)[2]
        kind = self.compute_dtype
        x = tf.cast(x, kind)
        taps = tf.constant(_TAPS, tf.float32)
        kernel = tf.einsum("apy,bqx,yxio->abpqio", taps, taps, tf.cast(self.kernel, tf.float32))
        # (2, 2, 2, 2, C_in, C_out): the output phase (row, column), then its 2x2 kernel
        kernel = tf.cast(kernel, kind)
        x = tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")  # (n, h + 2, w + 2, C_in)
        phases = [
            tf.nn.conv2d(x[:, a : a + h + 1, b : b + w + 1], kernel[a, b], 1, "VALID")  # (n, h, w, C_out)
            for a in (0, 1)
            for b in (0, 1)
        ]
        y = tf.nn.depth_to_space(tf.concat(phases, -1), 2) + tf.cast(self.bias, kind)  # (n, 2h, 2w, C_out)
        return y if self.activation is None else self.activation(y)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)


def reflect(x, p=1):
    """tf.pad(x, mode="REFLECT") on height and width: the same numbers, as slices and concatenations
    (2.5-3x faster than tf.pad's kernel at 512^2 x 64 in bfloat16 on these CPUs, decoding; in a
    training step tf.pad's kernels are faster: the slices' gradients are full-size tensors)."""
    x = tf.concat([tf.reverse(x[:, 1 : p + 1], [1]), x, tf.reverse(x[:, -p - 1 : -1], [1])], 1)
    return tf.concat([tf.reverse(x[:, :, 1 : p + 1], [2]), x, tf.reverse(x[:, :, -p - 1 : -1], [2])], 2)


def build_decoder(level, widths=None, precision="float32"):
    """The decoder after relu<level>_1: the encoder mirrored, as a Keras functional model.

    3x3 convolutions on reflection-padded input, each followed by a ReLU but the last (to 3
    channels, linear), and a nearest-neighbour 2x upsampling where the encoder pools (done with the
    convolution after it: `UpsampleConv2D`). With VGG-19's widths it has 1,731 / 112,451 /
    555,075 / 3,505,219 / 12,944,451 parameters for levels 1..5.

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
    x, upsampled = features, False
    for name, _, out, upsample in steps:
        last = name == "dec1_1"
        dtype = "float32" if last else policy
        activation = None if last else "relu"
        if upsampled:  # the upsampling before this convolution, its padding and it: one layer
            x = UpsampleConv2D(out, activation=activation, name=name, dtype=dtype)(x)
        else:
            x = ReflectionPad2D(name=f"{name}_pad", dtype=dtype)(x)
            x = tf.keras.layers.Conv2D(out, 3, activation=activation, name=name, dtype=dtype)(x)
        upsampled = upsample
    return tf.keras.Model(features, x, name=f"decoder_relu{level}_1")


def stride_grid(image, stride):
    """Mean square of the part of `image` ((n, H, W, C), float32) that repeats every `stride`
    pixels: of its detail (the image less its stride x stride box mean, so that a smooth gradient
    counts for nothing), each of the stride x stride phases' mean over the blocks, less the mean of
    the phases. A photograph's phases average alike (it has next to none); a nearest-neighbour
    decoder's lattice is exactly such a part (a zero-mean pattern of the period is counted whole).
    """
    image = tf.cast(image, tf.float32)
    low = tf.nn.avg_pool2d(image, stride, 1, "VALID")
    _, h, w, c = low.shape
    detail = image[:, stride // 2 : stride // 2 + h, stride // 2 : stride // 2 + w] - low
    h, w = h // stride * stride, w // stride * stride
    blocks = tf.reshape(detail[:, :h, :w], (-1, h // stride, stride, w // stride, stride, c))
    phases = tf.reduce_mean(blocks, axis=(1, 3))  # (n, stride, stride, c)
    return tf.reduce_mean(tf.square(phases - tf.reduce_mean(phases, axis=(1, 2), keepdims=True)))


GRID_STRIDES = 4  # the least crop for the grid term, in strides: 3 whole blocks a side at least


def check_grid_crop(crop, stride):
    """SettingError naming `crop` when square crops of `crop` px hold too few blocks of `stride` px
    for `stride_grid` to tell a lattice from detail (fewer than GRID_STRIDES strides a side)."""
    if crop < GRID_STRIDES * stride:
        why = f"must be at least {GRID_STRIDES * stride} px for the grid term at a {stride}-px stride"
        raise SettingError("crop", why + " (or give --grid_weight 0)", crop)


def crop_to(image, height, width):
    """The top-left (height, width) of a decoded (n, H', W', 3) image (H' >= height, W' >= width)."""
    return image[:, :height, :width, :]


def write_decoder(model, path, meta, storage="float32"):
    """Write a Keras decoder's weights and `meta` to `path` atomically (`decoder_files.write_arrays`)."""
    weights = {f"{layer.name}/{w.name}": w.numpy() for layer in model.layers for w in layer.weights}
    write_arrays(weights, path, meta, storage)


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
    weights, _ = tail_weights(path, level, widths)
    try:
        assign(model, weights)
    except ValueError as e:
        raise WeightsError(f"{Path(path)}: does not fit the relu{level}_1 decoder ({e})")
    return list(weights)


def assign(model, weights):
    """Set `model`'s layers from {layer: (kernel, bias)} (`tail_weights`).

    Raises:
      ValueError: a layer is missing or a weight's shape differs.
    """
    for name, values in weights.items():
        layer = model.get_layer(name)
        for weight, value in zip(layer.weights, values):
            if value.shape != tuple(weight.shape):
                raise ValueError(f"{name} has {value.shape}, expected {tuple(weight.shape)}")
            weight.assign(value)


def load_decoder(path, level, widths=None, precision="float32"):
    """`build_decoder(level, widths, precision)` with the weights of the file `path`.

    Raises:
      WeightsError: the file is unreadable, fails its folder's checksum (`verify`), or its weights
        do not fit that decoder.
    """
    model = build_decoder(level, widths, precision)
    weights, stored_level = tail_weights(path, level, widths)  # refuses a deeper level's file
    if stored_level != level:  # a lower level's: only the tail (`load_tail` is for that)
        raise WeightsError(f"{Path(path)}: not the relu{level}_1 decoder (it is relu{stored_level}_1's)")
    try:
        assign(model, weights)
    except ValueError as e:
        raise WeightsError(f"{Path(path)}: not the relu{level}_1 decoder of this encoder ({e})")
    return model
