"""The style losses as small objects (the one place `style_loss` is looked at), the content
loss's scale, the TV term, and the total.

Each computes a style image's target from its activations, blends the targets of several
style images, scores a generated image's activations against a target, and does the last two
from accumulated moments (sum a, sum a a^T, count) for tiling, so the formulas live in `costs`.
"""

import tensorflow as tf

from nst_tf import costs
from nst_tf.methods.gatys.config import CONTENT_LOSSES  # noqa: F401
from nst_tf.methods.gatys.config import STYLE_LOSSES as STYLE_LOSS_NAMES


class GramLoss:
    """The assignment's: squared distance of size-normalised Gram matrices."""

    target = staticmethod(costs.gram_target)
    layer_cost = staticmethod(costs.layer_style_cost_from_gram)

    def blend(self, targets, weights):
        return tf.add_n([w * t for w, t in zip(weights, targets)])

    def target_from_moments(self, mean, second):
        return tf.cast(second, tf.float32)

    def cost_from_moments(self, target, s1, s2, m):
        return costs.gram_style_cost(tf.cast(target, s2.dtype), s2 / m)


class MeanCovLoss:
    """2-Wasserstein distance between the Gaussians of the activations (crowsonkb's)."""

    target = staticmethod(costs.w2_target)
    layer_cost = staticmethod(costs.layer_style_cost_w2)

    def blend(self, targets, weights):
        """The Gaussian with the moments of the mixture of the style Gaussians."""
        if len(targets) == 1:
            return targets[0]
        mean = sum(w * m for w, (m, _, _) in zip(weights, targets))
        second = sum(w * (c + tf.tensordot(m, m, 0)) for w, (m, c, _) in zip(weights, targets))
        return costs.gaussian_target(mean, second - tf.tensordot(mean, mean, 0))

    def target_from_moments(self, mean, second):
        cov = second - tf.tensordot(mean, mean, 0)
        return costs.gaussian_target(tf.cast(mean, tf.float32), tf.cast(cov, tf.float32))

    def cost_from_moments(self, target, s1, s2, m):
        mean = s1 / m
        cov = s2 / m - tf.tensordot(mean, mean, 0)
        return costs.w2_from_moments([tf.cast(t, s1.dtype) for t in target], mean, cov)


STYLE_LOSSES = {"gram": GramLoss(), "mean_cov": MeanCovLoss()}
assert tuple(STYLE_LOSSES) == STYLE_LOSS_NAMES  # the names the settings accept


def content_scale(config, a_C):
    """What a content layer's `costs.compute_content_cost` is multiplied by: 1 for "mse" (the
    assignment's); for "relative", 4 / mean(a_C^2), which makes it mean((a_C - a_G)^2) / mean(a_C^2),
    the distance relative to the content's own feature energy (the issue-15 content distance). That
    energy falls as an image grows (the same photo's conv4_2 energy is 1.4x lower at each 2x larger
    size), so "mse" lets the content pull less at larger sizes; "relative" pulls alike at every size
    and on every photo."""
    if config.content_loss == "mse":
        return 1.0
    a_C = tf.cast(a_C, tf.float32)
    return 4.0 / tf.maximum(tf.reduce_mean(tf.square(a_C)), 1e-12)


SCALE = ":scale"  # the key of a content layer's scale among the content targets


def content_targets(activations, config):
    """{layer: the content's activations} of the content layers and, for "relative", each one's
    `content_scale` under `layer + SCALE`: the content is fixed, so its energy is taken once here,
    not at every step."""
    targets = {layer: activations[layer] for layer, _ in config.content_layers}
    if config.content_loss != "mse":
        targets.update({layer + SCALE: content_scale(config, targets[layer]) for layer in list(targets)})
    return targets


def style_loss(config):
    """The style loss `config.style_loss` names."""
    return STYLE_LOSSES[config.style_loss]


TV_SIDE = 512  # the long side at which the TV term is the plain sum


def tv_cost(image):
    """jcjohnson's smoothness term, `costs.total_variation_cost`, scaled by (512 / long side)^2: the
    sum grows with the number of pixels while the content and style costs are means, so unscaled
    the same `tv_weight` would smooth 4x harder at each 2x larger size. At a 512 px long side it
    is the plain sum."""
    long_side = max(image.shape[1], image.shape[2])
    return costs.total_variation_cost(image) * (TV_SIDE / long_side) ** 2


def total(J_content, J_style, image, config):
    """J = alpha J_content + beta style_strength J_style (+ tv_weight tv, jcjohnson's smoothing, see
    `tv_cost`); with the assignment's style_strength 1 and tv_weight 0, its `total_cost`."""
    J = costs.total_cost(J_content, J_style, config.alpha, config.style_weight)
    if config.tv_weight:
        J += config.tv_weight * tv_cost(image)
    return J
