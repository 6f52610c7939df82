"""The assignment's cost functions: content, Gram matrix, layer and weighted style, total."""

import tensorflow as tf

# The assignment's content layer, conv4_2, and its (layer, weight) pairs conv1_1 ... conv5_1, 0.2
# each: defined in VGG-19's layer table, which needs no TensorFlow (flags are made from them).
from nst_tf.nets.layers import CONTENT_LAYER, STYLE_LAYERS  # noqa: F401


def _dims(a, name):
    if a.shape.rank != 4 or a.shape[0] != 1:
        raise ValueError(f"{name} must have shape (1, n_H, n_W, n_C), not {a.shape}")
    return a.shape[1], a.shape[2], a.shape[3]


def _same_shape(a, b, names):
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} {a.shape} and {names[1]} {b.shape} must have the same shape")


def compute_content_cost(a_C, a_G):
    """J_content = 1/(4 n_H n_W n_C) * sum((a_C - a_G)^2).

    Args:
      a_C: content image's activations, (1, n_H, n_W, n_C).
      a_G: generated image's activations, same shape.

    Returns:
      Scalar tensor.
    """
    _same_shape(a_C, a_G, ("a_C", "a_G"))
    return content_cost_share(a_C, a_G, *_dims(a_G, "a_G"))


def content_cost_share(a_C, a_G, n_H, n_W, n_C):
    """sum((a_C - a_G)^2) / (4 n_H n_W n_C) with the sizes of the whole activation map, so that the
    shares of the parts of an image (tiles) add up to its `compute_content_cost`."""
    return tf.reduce_sum(tf.square(a_C - a_G)) / (4.0 * n_H * n_W * n_C)


def gram_matrix(A):
    """GA = A A^T.

    Args:
      A: unrolled activations, (n_C, n_H*n_W).

    Returns:
      Gram matrix, (n_C, n_C).
    """
    if A.shape.rank != 2:
        raise ValueError(f"A must have shape (n_C, n_H*n_W), not {A.shape}")
    return tf.matmul(A, A, transpose_b=True)


@tf.custom_gradient
def gram_of_positions(x):
    """x^T x for activations laid out as (positions, n_C): the Gram matrix without a transpose.

    The same matrix as `gram_matrix` of the unrolled (n_C, positions) activations, but the
    loop's costs use this: no (n_C, positions) copy is made, and the gradient is one matmul,
    x (dG + dG^T), where autodiff of a matmul makes two (one per operand). At 512x384 that is
    about 0.3 s less per step on the 2-core CPU of bench/.
    """

    def grad(dG):
        return tf.matmul(x, dG + tf.transpose(dG))

    return tf.matmul(x, x, transpose_a=True), grad


def _unrolled(a, n_H, n_W, n_C):
    return tf.transpose(tf.reshape(a, [n_H * n_W, n_C]))  # (n_C, n_H*n_W)


def compute_layer_style_cost(a_S, a_G):
    """J_style_layer = 1/(4 n_C^2 (n_H n_W)^2) * sum((G_S - G_G)^2).

    Args:
      a_S: style image's activations, (1, n_H, n_W, n_C).
      a_G: generated image's activations, same shape.

    Returns:
      Scalar tensor.
    """
    _same_shape(a_S, a_G, ("a_S", "a_G"))
    n_H, n_W, n_C = _dims(a_G, "a_G")
    GS = gram_matrix(_unrolled(a_S, n_H, n_W, n_C))  # (n_C, n_C)
    GG = gram_matrix(_unrolled(a_G, n_H, n_W, n_C))  # (n_C, n_C)
    return tf.reduce_sum(tf.square(GS - GG)) / (4.0 * n_C**2 * (n_H * n_W) ** 2)


def style_cost_terms(style_outputs, generated_outputs, style_layers=STYLE_LAYERS):
    """Per-layer weighted style costs: {layer: coeff * J_style_layer}."""
    return {
        name: coeff * compute_layer_style_cost(style_outputs[name], generated_outputs[name])
        for name, coeff in style_layers
    }


def compute_style_cost(style_outputs, generated_outputs, style_layers=STYLE_LAYERS):
    """J_style = sum over layers of coeff * J_style_layer.

    Args:
      style_outputs: {layer: activations} of the style image.
      generated_outputs: {layer: activations} of the generated image.
      style_layers: (layer, coeff) pairs; the assignment's STYLE_LAYERS by default.

    Returns:
      Scalar tensor.
    """
    return tf.add_n(list(style_cost_terms(style_outputs, generated_outputs, style_layers).values()))


def total_cost(J_content, J_style, alpha=10, beta=40):
    """J = alpha * J_content + beta * J_style."""
    return alpha * J_content + beta * J_style


# --- Beyond the assignment: what the optimiser uses, so style images may differ in size, be blended,
# --- or be matched by mean and covariance instead of the Gram matrix.


def gram_target(a_S):
    """The style Gram matrix normalised by its own size, G_S / (n_H n_W): (n_C, n_C).

    With it, `layer_style_cost_from_gram(gram_target(a_S), a_G)` equals
    `compute_layer_style_cost(a_S, a_G)` when the sizes agree, and stays meaningful when
    they do not (a style image at another scale) or when targets are blended.
    """
    n_H, n_W, n_C = _dims(a_S, "a_S")
    return gram_of_positions(tf.reshape(a_S, [n_H * n_W, n_C])) / (n_H * n_W)


def gram_style_cost(G_S, G_G):
    """sum((G_S - G_G)^2) / (4 n_C^2) of two size-normalised Gram matrices (any float dtype)."""
    n_C = float(G_S.shape[0])
    return tf.reduce_sum(tf.square(G_S - G_G)) / (4.0 * n_C**2)


def layer_style_cost_from_gram(G_S, a_G):
    """sum((G_S - G_G / (n_H n_W))^2) / (4 n_C^2): the assignment's layer cost, target precomputed."""
    n_H, n_W, n_C = _dims(a_G, "a_G")
    return gram_style_cost(G_S, gram_of_positions(tf.reshape(a_G, [n_H * n_W, n_C])) / (n_H * n_W))


def mean_cov(a):
    """Channel mean (n_C,) and covariance (n_C, n_C) of activations (1, n_H, n_W, n_C)."""
    n_H, n_W, n_C = _dims(a, "a")
    x = tf.reshape(a, [n_H * n_W, n_C])
    mean = tf.reduce_mean(x, axis=0)
    centred = x - mean
    return mean, gram_of_positions(centred) / (n_H * n_W)


@tf.custom_gradient
def trace_sqrtm(M):
    """tr(M^(1/2)) of a symmetric PSD matrix, with the stable gradient M^(-1/2) / 2.

    The gradient of a trace of a spectral function needs no eigenvector derivatives,
    so repeated eigenvalues are harmless (unlike differentiating `sqrtm` itself).
    """
    M = (M + tf.transpose(M)) / 2
    eigenvalues, vectors = tf.linalg.eigh(M)
    root = tf.sqrt(
        tf.maximum(eigenvalues, 1e-5 * tf.reduce_max(eigenvalues) + 1e-8)
    )  # floor: stable gradient

    def grad(dy):
        return dy * tf.matmul(vectors * (0.5 / root), vectors, transpose_b=True)

    return tf.reduce_sum(root), grad


def gaussian_target(mean, cov):
    """(mean, covariance, covariance^(1/2)): a style target for `layer_style_cost_w2`.

    The square root comes from the symmetric eigendecomposition in float64, with rounding-level
    negative eigenvalues set to 0: covariances of ReLU activations are often singular (channels
    that never fire), where a general `sqrtm` warns and may return complex noise.
    """
    cov64 = tf.cast(cov, tf.float64)
    eigenvalues, vectors = tf.linalg.eigh((cov64 + tf.transpose(cov64)) / 2)
    root = tf.matmul(vectors * tf.sqrt(tf.maximum(eigenvalues, 0.0)), vectors, transpose_b=True)
    return mean, cov, tf.cast(root, tf.float32)


def w2_target(a_S):
    """The style activations' Gaussian, as `layer_style_cost_w2` takes it."""
    return gaussian_target(*mean_cov(a_S))


def w2_from_moments(target, mean_G, cov_G):
    """Squared 2-Wasserstein distance between the target Gaussian and (mean_G, cov_G), / n_C."""
    mean_S, cov_S, root_S = target
    cross = trace_sqrtm(root_S @ cov_G @ root_S)
    w2 = (
        tf.reduce_sum(tf.square(mean_S - mean_G))
        + tf.linalg.trace(cov_S)
        + tf.linalg.trace(cov_G)
        - 2 * cross
    )
    return tf.maximum(w2, 0.0) / float(mean_S.shape[0])


def layer_style_cost_w2(target, a_G):
    """Squared 2-Wasserstein distance between Gaussians fitted to style and generated activations.

    W2^2 = |mu_S - mu_G|^2 + tr(S) + tr(G) - 2 tr((S^(1/2) G S^(1/2))^(1/2)), divided by n_C so
    layers of different widths weigh alike. crowsonkb/style-transfer-pytorch matches styles this
    way; unlike the Gram matrix it separates the mean from the covariance.
    """
    return w2_from_moments(target, *mean_cov(a_G))


def total_variation_cost(image):
    """Sum of squared differences between neighbouring pixels (jcjohnson's smoothness term)."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx))
