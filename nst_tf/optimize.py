"""The optimisation: settings (the single home of defaults), the train step, `stylize()`.

Nothing here prints or writes files: `stylize()` yields `Progress` and the caller
decides what to show and save (see `nst_tf.report` and `nst_tf.run`).
"""

import dataclasses
import time

import numpy as np
import tensorflow as tf

from nst_tf import costs, images
from nst_tf.errors import NstError
from nst_tf.vgg import POOLINGS, build_vgg, layer_names


@dataclasses.dataclass(frozen=True)
class Config:
    """Every setting of a run; the defaults are the assignment's.

    Attributes:
      iterations: optimisation steps (the assignment's `num_iterations`).
      save_every: report costs and yield the image every this many steps.
      learning_rate: Adam's learning rate on raw pixel values (0-255 scale).
      alpha: weight of the content cost.
      beta: weight of the style cost.
      noise_ratio: share of uniform noise in the starting image.
      width, height: working size in pixels; both images are resized to it.
      pooling: "avg" (the assignment's) or "max".
      content_layer: VGG layer of the content cost.
      style_layers: (layer, coefficient) pairs of the style cost.
      seed: seed of the starting noise; None for fresh noise each run.
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
    content_layer: str = costs.CONTENT_LAYER
    style_layers: tuple = tuple(costs.STYLE_LAYERS)
    seed: int | None = 1

    def validate(self):
        """Raise NstError naming the first setting (as its CLI flag) that cannot work."""
        positive = {
            "iterations": self.iterations,
            "save_every": self.save_every,
            "learning_rate": self.learning_rate,
        }
        for flag, value in positive.items():
            if not value > 0:
                raise NstError(f"--{flag}={value}: must be greater than 0")
        for flag, value in (("width", self.width), ("height", self.height)):
            if value < images.MIN_SIDE:
                raise NstError(f"--{flag}={value}: must be at least {images.MIN_SIDE} pixels")
        for flag, value in (("alpha", self.alpha), ("beta", self.beta)):
            if value < 0 or not np.isfinite(value):
                raise NstError(f"--{flag}={value}: must be a finite number >= 0")
        if not 0 <= self.noise_ratio <= 1:
            raise NstError(f"--noise_ratio={self.noise_ratio}: must be between 0 and 1")
        if self.pooling not in POOLINGS:
            raise NstError(f"--pooling={self.pooling}: must be one of {', '.join(POOLINGS)}")
        known = layer_names(self.pooling)
        for layer in [self.content_layer] + [n for n, _ in self.style_layers]:
            if layer not in known or layer == "input":
                raise NstError(f"unknown VGG-19 layer {layer!r}; use conv1_1 ... conv5_4")
        return self


@dataclasses.dataclass
class Progress:
    """What `stylize()` yields after each step.

    Attributes:
      iteration: index of the step just taken (0-based, as the assignment counts).
      iterations: total number of steps.
      elapsed: seconds since the first step started.
      costs: {"total", "content", "style"} of the image after this step, as floats,
        on save iterations and the last one; else None.
      image: the image after this step, (1, H, W, 3) minus means, when `costs` is set.
    """

    iteration: int
    iterations: int
    elapsed: float
    costs: dict | None = None
    image: np.ndarray | None = None

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

    def apply(self, grad, var):
        t = self.t.assign_add(1.0)
        m = self.m.assign(self.beta_1 * self.m + (1 - self.beta_1) * grad)
        v = self.v.assign(self.beta_2 * self.v + (1 - self.beta_2) * tf.square(grad))
        lr_t = self.lr * tf.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        var.assign_sub(lr_t * m / (tf.sqrt(v) + self.epsilon))


def make_cost_fn(model, content_image, style_image, config):
    """Targets computed once; returns `cost(image) -> (J, J_content, J_style)`."""
    a_C = model(content_image)[config.content_layer]  # (1, n_H, n_W, n_C), constant
    style_targets = model(style_image)  # {layer: (1, n_H, n_W, n_C)}, constant

    def cost(image):
        a_G = model(image)
        J_content = costs.compute_content_cost(a_C, a_G[config.content_layer])
        J_style = costs.compute_style_cost(style_targets, a_G, config.style_layers)
        return costs.total_cost(J_content, J_style, config.alpha, config.beta), J_content, J_style

    return cost


def make_train_step(cost, image, optimizer):
    """A `tf.function` taking one optimiser step on `image`; returns the pre-step costs."""

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            J, J_content, J_style = cost(image)
        optimizer.apply(tape.gradient(J, image), image)
        return J, J_content, J_style

    return train_step


def prepare(content_image, style_image, config):
    """Resize and preprocess both images to the config's size: (1, H, W, 3) minus means each."""
    content = images.resize_to(content_image, config.width, config.height)
    style = images.resize_to(style_image, config.width, config.height)
    return images.reshape_and_normalize_image(content), images.reshape_and_normalize_image(style)


def stylize(content_image, style_image, weights, config=Config()):
    """Optimise a noise-perturbed content image towards the style; yield after each step.

    Args:
      content_image: (H, W, 3) uint8 RGB, any size (resized to the config's).
      style_image: (H, W, 3) uint8 RGB, any size.
      weights: VGGWeights (see `nst_tf.weights.resolve_weights`).
      config: Config.

    Yields:
      Progress after each step; with costs and the image every `save_every` steps
      and after the last.
    """
    config.validate()
    content, style = prepare(content_image, style_image, config)
    needed = [config.content_layer] + [name for name, _ in config.style_layers]
    model = build_vgg(weights, config.pooling, outputs=sorted(set(needed)))
    cost = make_cost_fn(model, tf.constant(content), tf.constant(style), config)
    image = tf.Variable(images.generate_noise_image(content, config.noise_ratio, config.seed))
    train_step = make_train_step(cost, image, Adam(image, config.learning_rate))
    evaluate = tf.function(lambda: cost(image))
    start = time.perf_counter()
    for i in range(config.iterations):
        train_step()
        progress = Progress(i, config.iterations, 0.0)
        if i % config.save_every == 0 or progress.is_last:
            J, J_content, J_style = evaluate()  # costs of the image after this step, as model_nn
            progress.costs = {"total": float(J), "content": float(J_content), "style": float(J_style)}
            progress.image = image.numpy()
        progress.elapsed = time.perf_counter() - start
        yield progress
