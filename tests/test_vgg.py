import math

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_matconvnet

from nst_tf import load_vgg_model
from nst_tf.nets.vgg import build_vgg, layer_names

KEYS = [
    "input",
    "conv1_1",
    "conv1_2",
    "avgpool1",
    "conv2_1",
    "conv2_2",
    "avgpool2",
    "conv3_1",
    "conv3_2",
    "conv3_3",
    "conv3_4",
    "avgpool3",
    "conv4_1",
    "conv4_2",
    "conv4_3",
    "conv4_4",
    "avgpool4",
    "conv5_1",
    "conv5_2",
    "conv5_3",
    "conv5_4",
    "avgpool5",
]


def expected_shape(name, H, W, tiny):
    if name == "input":
        return (1, H, W, 3)
    block = int(name[4] if name.startswith("conv") else name[-1])
    k = block - 1 if name.startswith("conv") else block  # poolings halve after their block
    return (1, math.ceil(H / 2**k), math.ceil(W / 2**k), tiny[f"conv{block}_1"][0].shape[-1])


@pytest.mark.parametrize("export", ["current", "old"])
def test_load_vgg_model_on_tiny_mat_files(tmp_path, tiny, export):
    path = write_matconvnet(tmp_path / "vgg.mat", tiny, export)
    model = load_vgg_model(str(path))
    H, W = 37, 50  # odd sizes exercise SAME padding: ceil(H / 2^k)
    out = model(np.zeros((1, H, W, 3), np.float32))
    assert list(out) == KEYS
    for name in KEYS:
        assert tuple(out[name].shape) == expected_shape(name, H, W, tiny), name


def reference(image, layers, pooling="avg"):
    """The assignment's graph, with raw tf.nn ops."""
    x, out = image, {"input": image}
    for name in layer_names(pooling)[1:]:
        if name.startswith("conv"):
            kernel, bias = layers[name]
            x = tf.nn.relu(tf.nn.conv2d(x, kernel, [1, 1, 1, 1], "SAME") + bias)
        elif pooling == "avg":
            x = tf.nn.avg_pool(x, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        else:
            x = tf.nn.max_pool(x, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")
        out[name] = x
    return out


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_activations_match_the_assignments_graph(tiny, pooling):
    image = np.random.default_rng(1).uniform(-120, 130, (1, 45, 33, 3)).astype(np.float32)
    got = build_vgg(tiny, pooling)(image)
    want = reference(tf.constant(image), tiny, pooling)
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_allclose(got[name].numpy(), want[name].numpy(), rtol=1e-4, atol=1e-4, err_msg=name)
        if name.startswith("conv"):
            assert got[name].numpy().min() >= 0  # post-ReLU


def test_max_pooling_names_and_truncation(tiny):
    assert layer_names("max")[3] == "maxpool1"
    model = build_vgg(tiny, outputs=["conv1_1", "conv3_1"])
    assert [layer.name for layer in model.layers][-1] == "conv3_1"  # nothing past the deepest output
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        build_vgg(tiny, outputs=["conv6_1"])
    with pytest.raises(ValueError, match="pooling"):
        layer_names("median")


def input_gradient(model, image):
    x = tf.Variable(image)
    with tf.GradientTape() as tape:
        out = model(x)
        loss = tf.add_n([tf.reduce_sum(tf.square(v)) * (i + 1) for i, v in enumerate(out.values())])
    return tape.gradient(loss, x).numpy()


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_fast_gradient_equals_autodiff(tiny, pooling):
    """The forward-convolution input gradient equals TensorFlow's Conv2DBackpropInput gradient."""
    image = np.random.default_rng(4).uniform(-120, 130, (1, 29, 42, 3)).astype(np.float32)
    outputs = ["conv1_1", "conv2_2", f"{pooling}pool3", "conv4_2", "conv5_1"]
    fast = input_gradient(build_vgg(tiny, pooling, outputs), image)
    plain = input_gradient(build_vgg(tiny, pooling, outputs, fast_gradient=False), image)
    assert np.abs(plain).max() > 0
    np.testing.assert_allclose(fast, plain, rtol=1e-4, atol=1e-5 * np.abs(plain).max())


def test_fast_gradient_equals_autodiff_with_vgg19_weights(default_weights):
    image = np.random.default_rng(5).uniform(-120, 130, (1, 48, 64, 3)).astype(np.float32)
    outputs = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_2", "conv5_1"]
    fast = input_gradient(build_vgg(default_weights, "avg", outputs), image)
    plain = input_gradient(build_vgg(default_weights, "avg", outputs, fast_gradient=False), image)
    np.testing.assert_allclose(fast, plain, rtol=1e-3, atol=1e-4 * np.abs(plain).max())
