"""`nst_tf.train.jax_train`: the JAX networks, losses and Adam equal the TensorFlow ones on the same
weights; a pack holds the encoder exactly; a few steps lower the loss; its file goes on in nst_tf.train."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_layers
from PIL import Image

jax = pytest.importorskip("jax")
jnp = jax.numpy

from nst_tf import images  # noqa: E402
from nst_tf.errors import SettingError  # noqa: E402
from nst_tf.methods.adain import config as adain_config  # noqa: E402
from nst_tf.methods.adain import training as adain_training  # noqa: E402
from nst_tf.methods.wct import config as wct_config  # noqa: E402
from nst_tf.methods.wct import training as wct_training  # noqa: E402
from nst_tf.methods.wct import transforms  # noqa: E402
from nst_tf.nets import decoder as decoders  # noqa: E402
from nst_tf.nets import weights  # noqa: E402
from nst_tf.nets.vgg import build_vgg  # noqa: E402
from nst_tf.train import jax_train as jt  # noqa: E402
from nst_tf.train import options as train_options  # noqa: E402
from nst_tf.train import session  # noqa: E402
from nst_tf.train.options import TrainOptions  # noqa: E402

QUIET = lambda message: None  # noqa: E731


def test_its_constants_are_the_tensorflow_codes():
    np.testing.assert_array_equal(jt.MEANS, np.asarray(images.MEANS, np.float32).reshape(-1))
    assert jt.POOLING == wct_config.ENCODER_POOLING and jt.FEATURE_WEIGHT == wct_training.FEATURE_WEIGHT
    assert jt.STYLE_WEIGHT == train_options.STYLE_WEIGHT and jt.ADAIN_EPS == transforms.ADAIN_EPS
    assert (jt.ADAIN_LEVEL, jt.ADAIN_FILE) == (adain_config.LEVEL, adain_config.DECODER_FILE)
    assert jt.STYLE_LAYERS == adain_training.STYLE_LAYERS
    assert jt.GRID_WEIGHTS == {"wct": wct_training.GRID_WEIGHT, "adain": adain_training.GRID_WEIGHT}
    assert jt.GRID_STRIDES == decoders.GRID_STRIDES
    adam = tf.keras.optimizers.Adam()
    assert jt.ADAM == {"beta_1": adam.beta_1, "beta_2": adam.beta_2, "epsilon": adam.epsilon}


@pytest.fixture(scope="module")
def nets():
    """Tiny VGG weights, a TF relu2_1 and relu4_1 decoder, and the same as JAX parameters."""
    layers = tiny_layers()
    widths = decoders.widths_of(layers)
    tf.keras.utils.set_random_seed(3)
    keras = {level: decoders.build_decoder(level, widths) for level in (2, 4)}
    params = {
        level: {
            layer.name: tuple(w.numpy() for w in layer.weights) for layer in model.layers if layer.weights
        }
        for level, model in keras.items()
    }
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 48, 3)).astype(np.float32) - jt.MEANS
    return layers, widths, keras, params, x


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_encoder_is_build_vggs(nets, precision):
    layers, *_, x = nets
    outputs = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    want = build_vgg(layers, "max", outputs=outputs, precision=precision)(x)
    dtype = jnp.bfloat16 if precision == "bfloat16" else jnp.float32
    got = jt.encode(jax.tree_util.tree_map(jnp.asarray, layers), jnp.asarray(x), outputs, dtype)
    for name in outputs:
        scale = float(np.abs(want[name]).max()) + 1e-6
        tolerance = 1e-5 if precision == "float32" else 0.05  # bfloat16: 8 significant bits a layer
        np.testing.assert_allclose(np.asarray(got[name]) / scale, want[name].numpy() / scale, atol=tolerance)


def test_the_decoder_is_build_decoders(nets):
    layers, widths, keras, params, x = nets
    f = np.abs(np.random.default_rng(1).normal(0, 1, (2, 4, 6, widths[4]))).astype(np.float32)
    got = jt.decode(jax.tree_util.tree_map(jnp.asarray, params[4]), jnp.asarray(f), 4, widths, jnp.float32)
    np.testing.assert_allclose(np.asarray(got), keras[4](f).numpy(), rtol=1e-4, atol=1e-4)


def test_the_wct_and_adain_losses_are_the_training_codes(nets):
    layers, widths, keras, params, x = nets
    vgg = weights.VGGWeights(layers, "npz", "tiny", "0" * 64)
    task = wct_training.DecoderTraining(2, vgg, grid_weight=30.0)
    task.network.set_weights(keras[2].get_weights())
    want = {k: float(v) for k, v in task.losses(tf.constant(x)).items()}
    assert "grid" in want
    p2 = jax.tree_util.tree_map(jnp.asarray, params[2])
    got = jt.wct_losses(
        p2, jax.tree_util.tree_map(jnp.asarray, layers), jnp.asarray(x), 2, widths, jnp.float32, 30.0
    )
    for name in want:
        assert float(got[name]) == pytest.approx(want[name], rel=1e-4), name
    s = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32) - jt.MEANS
    task = adain_training.DecoderTraining(vgg, style_weight=7.0, grid_weight=300.0)
    task.network.set_weights(keras[4].get_weights())
    want = {k: float(v) for k, v in task.losses(tf.constant(x), tf.constant(s)).items()}
    assert "grid" in want
    p4 = jax.tree_util.tree_map(jnp.asarray, params[4])
    vgg_j = jax.tree_util.tree_map(jnp.asarray, layers)
    got = jt.adain_losses(p4, vgg_j, jnp.asarray(x), jnp.asarray(s), widths, jnp.float32, 7.0, 300.0)
    for name in want:
        assert float(got[name]) == pytest.approx(want[name], rel=1e-3), name


def test_adam_is_keras_adam():
    rng = np.random.default_rng(4)
    start, grads = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(4, 3, 5)).astype(np.float32)
    var, opt = tf.Variable(start), tf.keras.optimizers.Adam(0.01)
    p, moments = {"w": jnp.asarray(start)}, ({"w": jnp.zeros((3, 5))},) * 2
    for i, g in enumerate(grads):
        opt.apply_gradients([(tf.constant(g), var)])
        p, moments = jt.adam_update(p, moments, {"w": jnp.asarray(g)}, i + 1, 0.01)
    np.testing.assert_allclose(np.asarray(p["w"]), var.numpy(), rtol=1e-5, atol=1e-6)
    # --lr_decay: the training loop's Keras schedule, lr / (1 + decay t) at the t-th step (0-based)
    var = tf.Variable(start)
    opt = tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.InverseTimeDecay(0.01, 1, 0.5))
    p, moments = {"w": jnp.asarray(start)}, ({"w": jnp.zeros((3, 5))},) * 2
    for i, g in enumerate(grads):
        opt.apply_gradients([(tf.constant(g), var)])
        p, moments = jt.adam_update(p, moments, {"w": jnp.asarray(g)}, i + 1, 0.01 / (1 + 0.5 * i))
    np.testing.assert_allclose(np.asarray(p["w"]), var.numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """A manifest of photos and styles, tiny quantised VGG weights, and their pack."""
    root = tmp_path_factory.mktemp("jax")
    layers = tiny_layers()
    table = np.linspace(-0.3, 0.3, 256).astype(np.float32)  # quantised, as the embedded default is
    layers = {n: (table[np.abs(k[..., None] - table).argmin(-1)], b) for n, (k, b) in layers.items()}
    weights.write_npz(layers, root / "tiny.npz")
    rng, records = np.random.default_rng(0), []
    for kind in ("photo", "style"):
        (root / f"{kind}s").mkdir()
        for i in range(3):
            coarse = rng.integers(0, 255, (5, 6, 3)).astype(np.uint8)
            name = f"{kind}s/{kind}{i}.jpg"
            Image.fromarray(coarse).resize((60 + 8 * i, 48), Image.Resampling.BICUBIC).save(root / name)
            records.append({"file": name, "kind": kind, "split": "train" if i < 2 else "heldout"})
    (root / "manifest.json").write_text(json.dumps({"files": records}))
    jt.pack(root / "manifest.json", root / "pack", weights_path=root / "tiny.npz", log=QUIET)
    return root


def test_a_pack_holds_the_encoder_exactly_and_the_train_split(packed):
    got, encoder = jt.read_pack_vgg(packed / "pack" / jt.PACK_VGG)
    want = weights.read_weights(packed / "tiny.npz")
    assert list(got) == list(want.layers)[: list(want.layers).index("conv5_1") + 1]
    for name, (kernel, bias) in got.items():
        np.testing.assert_array_equal(kernel, want.layers[name][0])
        np.testing.assert_array_equal(bias, want.layers[name][1])
    assert encoder == {"source": want.source, "path": str(want.path), "sha256": want.sha256, "pooling": "max"}
    data = packed / "pack" / jt.PACK_DATA
    assert (data / "manifest.json").read_bytes() == (packed / "manifest.json").read_bytes()
    assert sorted(p.name for p in data.rglob("*.jpg")) == [
        "photo0.jpg",
        "photo1.jpg",
        "style0.jpg",
        "style1.jpg",
    ]


def test_crops_are_seeded_and_in_range(packed):
    manifest = packed / "pack" / jt.PACK_DATA / "manifest.json"
    a, b = (jt.Crops(manifest, "photo", 32, seed=5).batch(4) for _ in range(2))
    assert a.shape == (4, 32, 32, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 255
    np.testing.assert_array_equal(a, b)
    with pytest.raises(SettingError, match="lists no poster"):
        jt.Crops(manifest, "poster", 32, seed=0)


def test_training_lowers_the_loss_and_its_file_goes_on_in_nst_tf_train(packed, tmp_path):
    def run(method, level, out, iterations, **extra):
        options = jt.Options(
            method=method, level=level, pack=str(packed / "pack"), out=str(out), iterations=iterations,
            batch_size=2, crop=32, learning_rate=1e-2, precision="float32", log_every=5, save_every=100,
            **extra,
        )  # fmt: skip
        return jt.train(options, log=QUIET)

    model = run("wct", 1, tmp_path / "j", 30)
    rows = np.loadtxt(tmp_path / "j" / "wct_relu1_1_losses.csv", delimiter=",", skiprows=1)
    assert rows[:, 0].tolist() == list(range(2, 31))  # the first (compiling) step is not timed
    layers, _ = jt.read_pack_vgg(packed / "pack" / jt.PACK_VGG)
    widths = decoders.widths_of(layers)
    fixed = jt.Crops(packed / "manifest.json", "photo", 32, seed=99).batch(4) - jt.MEANS
    with np.load(model) as z:
        trained = {n: (z[f"{n}/kernel"], z[f"{n}/bias"]) for n, *_ in decoders.plan(1, widths)}
    before, after = (
        float(jt.wct_losses(p, layers, fixed, 1, widths, jnp.float32)["total"])
        for p in (jt.init_decoder(1, widths, seed=0), trained)
    )
    assert after < 0.5 * before, (before, after)
    meta = decoders.read_meta(model)
    assert (meta["method"], meta["level"], meta["steps"]) == ("wct", 1, 30)
    assert meta["encoder"]["sha256"] == weights.read_weights(packed / "tiny.npz").sha256
    assert [s["steps"] for s in meta["stages"]] == [30] and "JAX" in meta["stages"][0]["cpu"]
    deeper = run("wct", 2, tmp_path / "j2", 1, init_from=str(model))  # the tail from relu1_1's
    assert decoders.read_meta(deeper)["stages"][0]["part"] == "dec1_1 ... dec1_1"
    # here, on TensorFlow: the JAX model goes on, its stage carried
    options = TrainOptions(
        level=1, data=str(packed / "manifest.json"), out=str(tmp_path / "tf"),  # = the pack's
        iterations=1, batch_size=2, crop=32, precision="float32", weights=str(packed / "tiny.npz"),
        init_from=str(model),
    )  # fmt: skip
    carried = session.train(options, log=QUIET)
    assert [s["steps"] for s in decoders.read_meta(carried)["stages"]] == [30, 1]
    adain = run("adain", None, tmp_path / "a", 3)
    assert decoders.read_meta(adain)["method"] == "adain"
    decoders.load_decoder(adain, 4, decoders.widths_of(tiny_layers()))


def test_bad_settings_are_named(packed, tmp_path):
    with pytest.raises(SettingError, match="level=6: must be 1..5"):
        jt.train(jt.Options(level=6, pack=str(packed / "pack"), out=str(tmp_path)), log=QUIET)
    with pytest.raises(SettingError, match="pack=.*holds no vgg19.npz"):
        jt.train(jt.Options(level=2, pack=str(tmp_path), out=str(tmp_path)), log=QUIET)
    pack = str(packed / "pack")
    with pytest.raises(SettingError, match="grid_weight=5.0: relu1_1's decoder does not upsample"):
        jt.train(jt.Options(level=1, pack=pack, out=str(tmp_path), grid_weight=5.0), log=QUIET)
    with pytest.raises(SettingError, match="crop=48: must be at least 4 strides"):
        jt.train(jt.Options(level=5, pack=pack, out=str(tmp_path), crop=48), log=QUIET)
    assert jt.Run(jt.Options(level=1, pack=pack, out=str(tmp_path), crop=16)).options.grid_weight == 0.0


def test_the_command_trains_where_tensorflow_cannot_be_imported(packed, tmp_path):
    """As on the GPU machines, whose Python has JAX and no TensorFlow."""
    import subprocess
    import sys

    from conftest import REPO

    block = "import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = ['jax_train', *sys.argv[1:]]; "
    run = "runpy.run_module('nst_tf.train.jax_train', run_name='__main__')"
    args = ["train", "--pack", str(packed / "pack"), "--level", "1", "--out", str(tmp_path), "--crop", "32"]
    args += ["--iterations", "2", "--batch_size", "2", "--storage", "float16"]
    done = subprocess.run(
        [sys.executable, "-c", block + run, *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (
        "Done:" in done.stdout
        and decoders.read_meta(tmp_path / "decoder_relu1_1.npz")["storage"] == "float16"
    )
    done = subprocess.run(
        [sys.executable, "-c", block + run, *args[:3], "--out", str(tmp_path), "--level", "7"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert (
        done.returncode == 2
        and done.stderr == "error: --level=7: must be 1..5 (the decoder after relu1_1 ... relu5_1)\n"
    )
