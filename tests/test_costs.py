import warnings

import numpy as np
import pytest
import tensorflow as tf
from conftest import EPS32, assert_within, float32_sum_tolerance

from nst_tf import costs


def draws():
    tf.random.set_seed(1)
    first = tf.random.normal([1, 4, 4, 3], mean=1, stddev=4)
    second = tf.random.normal([1, 4, 4, 3], mean=1, stddev=4)
    return first, second


def test_content_cost_matches_the_assignment():
    a_C, a_G = draws()
    # 48 positive terms: float32 relative rounding <= (log2(48) + 2) eps ~ 1e-6 whatever the kernel
    assert float(costs.compute_content_cost(a_C, a_G)) == pytest.approx(7.0568767, rel=2e-6)


def test_layer_style_cost_matches_the_assignment():
    a_S, a_G = draws()
    # The course printed 14.01649 from a GPU with TF32 matmuls; float32 on the CPU gives this.
    # Gram entries are sums of 16 products with cancellation, and G_S - G_G cancels again: 1e-5
    # relative is what float32 allows on any kernel, and still six of the digits printed.
    assert float(costs.compute_layer_style_cost(a_S, a_G)) == pytest.approx(14.017808, rel=1e-5)


def test_total_cost():
    assert costs.total_cost(0.2, 0.8) == 34
    assert costs.total_cost(1.0, 1.0, alpha=2, beta=3) == 5


def test_gram_matrix_against_numpy():
    A = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    want = A.astype(np.float64) @ A.T.astype(np.float64)  # float64 reference
    bound = float32_sum_tolerance(8, np.abs(A) @ np.abs(A).T)  # entries cancel: no relative bound
    assert_within(costs.gram_matrix(tf.constant(A)).numpy(), want, bound)


def test_gram_of_positions_and_its_gradient_equal_autodiff():
    """The loop's Gram matrix (no transpose copy, one-matmul gradient) is the assignment's, exactly
    up to float rounding, and so is its gradient through a layer style cost."""
    rng = np.random.default_rng(2)
    a_S, a_G = (tf.constant(rng.normal(1, 4, size=(1, 6, 5, 7)).astype(np.float32)) for _ in range(2))
    x = tf.reshape(a_G, [30, 7])
    bound = float32_sum_tolerance(30, np.abs(x.numpy()).T @ np.abs(x.numpy()))  # per entry, 30 terms
    assert_within(costs.gram_of_positions(x).numpy(), costs.gram_matrix(tf.transpose(x)).numpy(), bound)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(a_G)
        fast = costs.layer_style_cost_from_gram(costs.gram_target(a_S), a_G)
        plain = costs.compute_layer_style_cost(a_S, a_G)
        _, cov = costs.mean_cov(a_G)
        cov_fast = tf.reduce_sum(cov * cov[::-1])  # a non-symmetric function of the covariance
        c = tf.reshape(a_G, [30, 7]) - tf.reduce_mean(tf.reshape(a_G, [30, 7]), 0)
        cov_plain = tf.matmul(c, c, transpose_a=True) / 30
        cov_plain = tf.reduce_sum(cov_plain * cov_plain[::-1])
    assert float(fast) == pytest.approx(float(plain), rel=1e-4)  # squares of G_S - G_G: cancellation
    for got, want in ((fast, plain), (cov_fast, cov_plain)):
        g, w = tape.gradient(got, a_G).numpy(), tape.gradient(want, a_G).numpy()
        assert np.abs(w).max() > 0
        # gradients sum 30-term products of cancelling Gram differences: relative to the largest
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * np.abs(w).max())


def test_style_cost_is_the_weighted_sum_of_layer_costs():
    rng = np.random.default_rng(1)
    layers = [("a", 0.3), ("b", 0.7)]
    S = {n: tf.constant(rng.normal(size=(1, 5, 3, c)).astype(np.float32)) for n, c in (("a", 2), ("b", 4))}
    G = {n: tf.constant(rng.normal(size=(1, 5, 3, c)).astype(np.float32)) for n, c in (("a", 2), ("b", 4))}

    def reference(s, g):  # the assignment's formula in numpy
        _, h, w, c = s.shape
        s, g = s.reshape(h * w, c).T, g.reshape(h * w, c).T
        s, g = s.astype(np.float64), g.astype(np.float64)
        return ((s @ s.T - g @ g.T) ** 2).sum() / (4 * c**2 * (h * w) ** 2)

    expected = sum(k * reference(S[n].numpy(), G[n].numpy()) for n, k in layers)
    # float64 reference; G_S - G_G cancels, so the float32 cost is good to about 1e-5 relative
    assert float(costs.compute_style_cost(S, G, layers)) == pytest.approx(expected, rel=1e-4)
    terms = costs.style_cost_terms(S, G, layers)
    assert set(terms) == {"a", "b"}


def test_assignment_style_layers():
    assert costs.STYLE_LAYERS == [(f"conv{i}_1", 0.2) for i in range(1, 6)]
    assert costs.CONTENT_LAYER == "conv4_2"


@pytest.mark.parametrize("fn", [costs.compute_content_cost, costs.compute_layer_style_cost])
def test_bad_shapes_raise_value_error(fn):
    with pytest.raises(ValueError, match="same shape"):
        fn(tf.zeros([1, 4, 4, 3]), tf.zeros([1, 4, 4, 2]))
    with pytest.raises(ValueError, match="n_H"):
        fn(tf.zeros([4, 4, 3]), tf.zeros([4, 4, 3]))


def test_gaussian_target_root_of_a_singular_covariance():
    """The square root used by the mean_cov loss: exact, symmetric, real, no warning when singular."""
    rng = np.random.default_rng(6)
    x = np.maximum(rng.normal(size=(50, 6)), 0)
    x[:, 2] = 0  # a channel that never fires: a singular covariance
    cov = tf.constant(np.cov(x, rowvar=False, bias=True).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, root = costs.gaussian_target(tf.zeros(6), cov)
    root = root.numpy()
    # the root is computed in float64 and rounded once to float32: entries within eps of their size
    scale = np.abs(root).max()
    np.testing.assert_allclose(root, root.T, rtol=0, atol=4 * EPS32 * scale)
    np.testing.assert_allclose(root @ root, cov.numpy(), rtol=0, atol=float32_sum_tolerance(6, scale**2) * 4)
    assert np.linalg.eigvalsh(root).min() > -1e-5
