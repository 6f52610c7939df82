import warnings

import numpy as np
import pytest
import tensorflow as tf

from nst_tf import costs


def draws():
    tf.random.set_seed(1)
    first = tf.random.normal([1, 4, 4, 3], mean=1, stddev=4)
    second = tf.random.normal([1, 4, 4, 3], mean=1, stddev=4)
    return first, second


def test_content_cost_matches_the_assignment():
    a_C, a_G = draws()
    assert float(costs.compute_content_cost(a_C, a_G)) == pytest.approx(7.0568767, abs=1e-6)


def test_layer_style_cost_matches_the_assignment():
    a_S, a_G = draws()
    # The course printed 14.01649 from a GPU with TF32 matmuls; float32 on the CPU gives this.
    assert float(costs.compute_layer_style_cost(a_S, a_G)) == pytest.approx(14.017808, abs=1e-5)


def test_total_cost():
    assert costs.total_cost(0.2, 0.8) == 34
    assert costs.total_cost(1.0, 1.0, alpha=2, beta=3) == 5


def test_gram_matrix_against_numpy():
    A = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    np.testing.assert_allclose(costs.gram_matrix(tf.constant(A)).numpy(), A @ A.T, rtol=1e-5)


def test_gram_of_positions_and_its_gradient_equal_autodiff():
    """The loop's Gram matrix (no transpose copy, one-matmul gradient) is the assignment's, exactly
    up to float rounding, and so is its gradient through a layer style cost."""
    rng = np.random.default_rng(2)
    a_S, a_G = (tf.constant(rng.normal(1, 4, size=(1, 6, 5, 7)).astype(np.float32)) for _ in range(2))
    x = tf.reshape(a_G, [30, 7])
    np.testing.assert_allclose(
        costs.gram_of_positions(x).numpy(), costs.gram_matrix(tf.transpose(x)).numpy(), rtol=1e-6
    )
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(a_G)
        fast = costs.layer_style_cost_from_gram(costs.gram_target(a_S), a_G)
        plain = costs.compute_layer_style_cost(a_S, a_G)
        _, cov = costs.mean_cov(a_G)
        cov_fast = tf.reduce_sum(cov * cov[::-1])  # a non-symmetric function of the covariance
        c = tf.reshape(a_G, [30, 7]) - tf.reduce_mean(tf.reshape(a_G, [30, 7]), 0)
        cov_plain = tf.matmul(c, c, transpose_a=True) / 30
        cov_plain = tf.reduce_sum(cov_plain * cov_plain[::-1])
    assert float(fast) == pytest.approx(float(plain), rel=1e-5)
    for got, want in ((fast, plain), (cov_fast, cov_plain)):
        g, w = tape.gradient(got, a_G).numpy(), tape.gradient(want, a_G).numpy()
        assert np.abs(w).max() > 0
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * np.abs(w).max())


def test_style_cost_is_the_weighted_sum_of_layer_costs():
    rng = np.random.default_rng(1)
    layers = [("a", 0.3), ("b", 0.7)]
    S = {n: tf.constant(rng.normal(size=(1, 5, 3, c)).astype(np.float32)) for n, c in (("a", 2), ("b", 4))}
    G = {n: tf.constant(rng.normal(size=(1, 5, 3, c)).astype(np.float32)) for n, c in (("a", 2), ("b", 4))}

    def reference(s, g):  # the assignment's formula in numpy
        _, h, w, c = s.shape
        s, g = s.reshape(h * w, c).T, g.reshape(h * w, c).T
        return ((s @ s.T - g @ g.T) ** 2).sum() / (4 * c**2 * (h * w) ** 2)

    expected = sum(k * reference(S[n].numpy(), G[n].numpy()) for n, k in layers)
    assert float(costs.compute_style_cost(S, G, layers)) == pytest.approx(expected, rel=1e-5)
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
    np.testing.assert_allclose(root, root.T, atol=1e-6)
    np.testing.assert_allclose(root @ root, cov.numpy(), atol=1e-5)
    assert np.linalg.eigvalsh(root).min() > -1e-5
