"""The tensorflow.org "Neural style transfer" tutorial's optimisation loop, with nst_tf's VGG-19 weights.

Kept as close to the tutorial as the benchmark allows: `tf.keras.applications.VGG19`, its
`StyleContentModel` (caffe `preprocess_input`, einsum Gram matrices), content layer
`block5_conv2`, style layers `block1_conv1` ... `block5_conv1`, `Adam(0.02, beta_1=0.99,
epsilon=1e-1)`, and a `tf.function` train step ending in `clip_0_1`. The only change is where
the weights come from: `weights=None`, then set from nst_tf's canonical (RGB) layers.
"""

import warnings

import numpy as np
import tensorflow as tf

# Keras 3 warns that the tutorial's `tf.keras.Model([vgg.input], ...)` wraps its one input in a list.
warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")

CONTENT_LAYERS = ["block5_conv2"]
STYLE_LAYERS = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1"]
STYLE_WEIGHT = 1e-2
CONTENT_WEIGHT = 1e4


def keras_name(name):
    """nst_tf's `convB_C` -> Keras's `blockB_convC`."""
    block, conv = name[4:].split("_")
    return f"block{block}_conv{conv}"


def set_vgg_weights(vgg, layers):
    """Copy canonical RGB conv layers into Keras's VGG19, which expects BGR (caffe) input.

    Args:
      vgg: `tf.keras.applications.VGG19(include_top=False)`.
      layers: `VGGWeights.layers`, `convB_C` -> (kernel `[kh, kw, in, out]`, bias).
    """
    for name, (kernel, bias) in layers.items():
        if name == "conv1_1":
            kernel = kernel[:, :, ::-1, :]  # canonical RGB input channels back to caffe's BGR
        vgg.get_layer(keras_name(name)).set_weights([np.ascontiguousarray(kernel), bias])


def vgg_layers(layer_names, layers):
    """The tutorial's `vgg_layers`: a model returning the named activations."""
    vgg = tf.keras.applications.VGG19(include_top=False, weights=None)
    set_vgg_weights(vgg, layers)
    vgg.trainable = False
    outputs = [vgg.get_layer(name).output for name in layer_names]
    return tf.keras.Model([vgg.input], outputs)


def gram_matrix(input_tensor):
    """The tutorial's Gram matrix, averaged over locations."""
    result = tf.linalg.einsum("bijc,bijd->bcd", input_tensor, input_tensor)
    input_shape = tf.shape(input_tensor)
    num_locations = tf.cast(input_shape[1] * input_shape[2], tf.float32)
    return result / num_locations


class StyleContentModel(tf.keras.models.Model):
    """The tutorial's extractor: style Gram matrices and content activations of a [0, 1] image."""

    def __init__(self, style_layers, content_layers, layers):
        super().__init__()
        self.vgg = vgg_layers(style_layers + content_layers, layers)
        self.style_layers = style_layers
        self.content_layers = content_layers
        self.num_style_layers = len(style_layers)
        self.vgg.trainable = False

    def call(self, inputs):
        inputs = inputs * 255.0
        preprocessed_input = tf.keras.applications.vgg19.preprocess_input(inputs)
        outputs = self.vgg(preprocessed_input)
        style_outputs, content_outputs = outputs[: self.num_style_layers], outputs[self.num_style_layers :]
        style_outputs = [gram_matrix(style_output) for style_output in style_outputs]
        content_dict = dict(zip(self.content_layers, content_outputs))
        style_dict = dict(zip(self.style_layers, style_outputs))
        return {"content": content_dict, "style": style_dict}


def clip_0_1(image):
    return tf.clip_by_value(image, clip_value_min=0.0, clip_value_max=1.0)


def make_train_step(extractor, style_targets, content_targets, jit_compile=False):
    """The tutorial's loss and `train_step`; `jit_compile=True` compiles it with XLA."""
    opt = tf.keras.optimizers.Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)
    num_style_layers, num_content_layers = len(style_targets), len(content_targets)

    def style_content_loss(outputs):
        style_outputs, content_outputs = outputs["style"], outputs["content"]
        style_loss = tf.add_n(
            [tf.reduce_mean((style_outputs[name] - style_targets[name]) ** 2) for name in style_outputs]
        )
        style_loss *= STYLE_WEIGHT / num_style_layers
        content_loss = tf.add_n(
            [tf.reduce_mean((content_outputs[name] - content_targets[name]) ** 2) for name in content_outputs]
        )
        content_loss *= CONTENT_WEIGHT / num_content_layers
        return style_loss + content_loss

    @tf.function(jit_compile=jit_compile)
    def train_step(image):
        with tf.GradientTape() as tape:
            outputs = extractor(image)
            loss = style_content_loss(outputs)
        grad = tape.gradient(loss, image)
        opt.apply_gradients([(grad, image)])
        image.assign(clip_0_1(image))

    return train_step


def make_step(content, style, layers, jit_compile=False):
    """Set the tutorial up for one size and return a no-argument function taking one step.

    Args:
      content: (H, W, 3) uint8 RGB content image, already at the working size.
      style: (H, W, 3) uint8 RGB style image, same size.
      layers: `VGGWeights.layers` (canonical RGB).
      jit_compile: compile the train step with XLA.
    """
    content_image = tf.constant(content[np.newaxis].astype(np.float32) / 255.0)
    style_image = tf.constant(style[np.newaxis].astype(np.float32) / 255.0)
    extractor = StyleContentModel(STYLE_LAYERS, CONTENT_LAYERS, layers)
    style_targets = extractor(style_image)["style"]
    content_targets = extractor(content_image)["content"]
    image = tf.Variable(content_image)
    train_step = make_train_step(extractor, style_targets, content_targets, jit_compile)
    return lambda: train_step(image)
