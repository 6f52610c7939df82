"""AdaIN's transform as pure functions on batches of feature maps (n, H, W, C), differentiable (the
training loss goes through it). Inference gathers the same statistics over tiles and regions with
`nst_tf.methods.wct.transforms.Moments(diagonal=True)` and applies `LinearMap.adain`."""

import tensorflow as tf

from nst_tf.methods.wct.transforms import ADAIN_EPS


def channel_statistics(f, eps=ADAIN_EPS):
    """Each image's channel means and standard deviations over positions: two (n, 1, 1, C) float32.

    The variance is the unbiased one (divided by H x W - 1) plus `eps` under the square root, as
    in the reference code (`calc_mean_std`).
    """
    f = tf.cast(f, tf.float32)
    if f.shape.rank != 4:
        raise ValueError(f"features are (n, H, W, C), not {f.shape}")
    n = tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
    mean, var = tf.nn.moments(f, axes=[1, 2], keepdims=True)
    return mean, tf.sqrt(var * n / tf.maximum(n - 1.0, 1.0) + eps)


def adaptive_instance_normalization(content_f, style_f, eps=ADAIN_EPS):
    """AdaIN(x, y) = sigma(y) (x - mu(x)) / sigma(x) + mu(y), per image and channel.

    Args:
      content_f: (n, H, W, C) features of the contents.
      style_f: (n, h, w, C) features of one style per content (any h, w).

    Returns:
      float32 (n, H, W, C).
    """
    if content_f.shape[-1] != style_f.shape[-1]:
        raise ValueError(f"channels differ: content {content_f.shape}, style {style_f.shape}")
    (mc, sc), (ms, ss) = channel_statistics(content_f, eps), channel_statistics(style_f, eps)
    return (tf.cast(content_f, tf.float32) - mc) / sc * ss + ms


def statistics_distance(f, style_f, eps=ADAIN_EPS):
    """AdaIN's style loss at one layer: mean over (n, C) of (mu(f) - mu(s))^2 + (sigma(f) - sigma(s))^2."""
    (m, s), (ms, ss) = channel_statistics(f, eps), channel_statistics(style_f, eps)
    return tf.reduce_mean(tf.square(m - ms)) + tf.reduce_mean(tf.square(s - ss))
