"""The assignment's cost functions: content, Gram matrix, layer and weighted style, total."""

import tensorflow as tf

CONTENT_LAYER = "conv4_2"

# The assignment's (layer, weight) pairs: conv1_1 ... conv5_1, 0.2 each.
STYLE_LAYERS = [
    ("conv1_1", 0.2),
    ("conv2_1", 0.2),
    ("conv3_1", 0.2),
    ("conv4_1", 0.2),
    ("conv5_1", 0.2),
]


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
    n_H, n_W, n_C = _dims(a_G, "a_G")
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
