"""WCT: the feature transforms against numpy, the decoders' shapes and sizes, the method on the seam."""

import dataclasses
import json
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, tiny_layers, write_fast_inputs
from PIL import Image

from nst_tf import images
from nst_tf.app import report, single
from nst_tf.errors import SettingError, WeightsError
from nst_tf.methods import base, get
from nst_tf.methods.gatys.memory import resident_bytes
from nst_tf.methods.wct import transforms
from nst_tf.methods.wct.config import WCTSettings
from nst_tf.methods.wct.method import masks_for
from nst_tf.nets import decoder as decoders
from nst_tf.nets import weights

QUIET = lambda message: None  # noqa: E731


def correlated(rng, n, c, scale=1.0, shift=0.0):
    """(1, n, 1, c) features with a random full covariance."""
    mixing = rng.normal(0, 1, (c, c)) * scale
    return (rng.normal(0, 1, (n, c)) @ mixing + shift).reshape(1, n, 1, c).astype(np.float32)


def np_stats(f):
    rows = np.asarray(f, np.float64).reshape(-1, np.shape(f)[-1])
    return rows.mean(0), np.cov(rows, rowvar=False)


def np_power(cov, power, eps=transforms.EPS):
    values, vectors = np.linalg.eigh(cov)
    kept = np.where(values > eps, np.abs(values) ** power, 0.0)
    return (vectors * kept) @ vectors.T


def np_wct(content, style):
    """The paper's transform in numpy: (x - mu_c) C_c^-1/2 C_s^1/2 + mu_s."""
    mc, cc = np_stats(content)
    ms, cs = np_stats(style)
    rows = np.asarray(content, np.float64).reshape(-1, content.shape[-1])
    return (rows - mc) @ np_power(cc, -0.5) @ np_power(cs, 0.5) + ms


def test_whitened_features_have_identity_covariance():
    content = correlated(np.random.default_rng(0), 200, 6, 3.0, 5.0)
    whitened, mean = transforms.whiten(content)
    got_mean, got_cov = np_stats(whitened.numpy())
    np.testing.assert_allclose(got_cov, np.eye(6), atol=1e-9)
    np.testing.assert_allclose(got_mean, 0, atol=1e-9)
    np.testing.assert_allclose(mean.numpy(), np_stats(content)[0], rtol=1e-6)


def test_coloured_features_have_the_styles_mean_and_covariance_as_numpy_computes():
    rng = np.random.default_rng(1)
    content, style = correlated(rng, 150, 5, 2.0, 1.0), correlated(rng, 90, 5, 0.5, -3.0)
    out = transforms.whiten_colour(content, style)
    assert out.shape == content.shape and out.dtype.name == "float32"
    mean, cov = np_stats(out.numpy())
    style_mean, style_cov = np_stats(style)
    np.testing.assert_allclose(mean, style_mean, atol=1e-4)
    np.testing.assert_allclose(cov, style_cov, atol=1e-4)
    np.testing.assert_allclose(out.numpy().reshape(-1, 5), np_wct(content, style), rtol=1e-5, atol=1e-5)


def test_statistics_gathered_in_blocks_equal_numpys():
    """Blocks of rows (as for a large image), shifted so the sums of squares do not cancel."""
    content = correlated(np.random.default_rng(5), 103, 6, 0.01, 300.0)  # small spread, large mean
    mean, cov = transforms.mean_and_covariance(content, chunk=16)
    want_mean, want_cov = np_stats(content)
    np.testing.assert_allclose(mean.numpy(), want_mean, rtol=1e-9)
    np.testing.assert_allclose(cov.numpy(), want_cov, rtol=1e-6, atol=1e-12)


def test_a_singular_content_covariance_drops_its_null_directions_like_the_papers_code():
    rng = np.random.default_rng(2)
    content, style = correlated(rng, 4, 8), correlated(rng, 50, 8)  # 4 positions, 8 channels: rank 3
    out = transforms.whiten_colour(content, style).numpy()
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.reshape(-1, 8), np_wct(content, style), rtol=1e-4, atol=1e-4)


def test_strength_blends_and_zero_gives_the_content_back():
    rng = np.random.default_rng(3)
    content, style = correlated(rng, 40, 4), correlated(rng, 40, 4, 2.0)
    moved = transforms.whiten_colour(content, style)
    np.testing.assert_array_equal(transforms.blend(moved, content, 0.0).numpy(), content)
    np.testing.assert_array_equal(transforms.blend(moved, content, 1.0).numpy(), moved.numpy())
    half = transforms.blend(moved, content, 0.5).numpy()
    np.testing.assert_allclose(half, (moved.numpy() + content) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        transforms.blend(moved, content, 1.5)


def test_the_strength_folded_into_the_map_is_the_blend_and_zero_is_the_identity():
    """The engine applies alpha * T(x) + (1 - alpha) * x as one affine map (`with_strength`)."""
    rng = np.random.default_rng(6)
    content, style = correlated(rng, 300, 6, 3.0, 20.0), correlated(rng, 200, 6, 0.5, -3.0)
    rows = content.reshape(-1, 6)
    stats = transforms.mean_and_covariance(content), transforms.mean_and_covariance(style)
    full = transforms.LinearMap.wct(*stats)
    np.testing.assert_array_equal(full.with_strength(0.0)(rows).numpy(), rows)  # exactly the content
    assert full.with_strength(1.0) is full
    for alpha in (0.3, 0.8):
        want = transforms.blend(full(rows), rows, alpha).numpy()
        np.testing.assert_allclose(full.with_strength(alpha)(rows).numpy(), want, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        full.with_strength(-0.1)


def test_styles_blend_by_their_weights():
    rng = np.random.default_rng(4)
    content, s1, s2 = (correlated(rng, 60, 3, k) for k in (1.0, 2.0, 0.3))
    one, two = transforms.whiten_colour(content, s1).numpy(), transforms.whiten_colour(content, s2).numpy()
    np.testing.assert_allclose(transforms.blend_styles(content, [s1, s2], [1.0, 0.0]).numpy(), one)
    mixed = transforms.blend_styles(content, [s1, s2], [0.25, 0.75]).numpy()
    np.testing.assert_allclose(mixed, 0.25 * one + 0.75 * two, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="one weight per style"):
        transforms.blend_styles(content, [s1, s2], [1.0])


def test_each_style_goes_to_its_masks_region_and_the_rest_keeps_the_content():
    rng = np.random.default_rng(5)
    content = rng.normal(2, 1, (1, 8, 12, 3)).astype(np.float32)
    s1, s2 = correlated(rng, 50, 3, 0.5, 10.0), correlated(rng, 50, 3, 2.0, -10.0)
    left, right = np.zeros((16, 24)), np.zeros((16, 24))  # masks at twice the feature map's size
    left[:, :8], right[:, 12:20] = 1.0, 1.0
    out = transforms.masked(content, [s1, s2], [left, right]).numpy()
    np.testing.assert_allclose(
        out[0, :, :4].reshape(-1, 3), np_wct(content[:, :, :4], s1), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        out[0, :, 6:10].reshape(-1, 3), np_wct(content[:, :, 6:10], s2), rtol=1e-4, atol=1e-4
    )
    for kept in (slice(4, 6), slice(10, 12)):  # in no mask
        np.testing.assert_array_equal(out[0, :, kept], content[0, :, kept])
    assert (
        transforms.resize_mask(left, 8, 12)[:, :4].all()
        and not transforms.resize_mask(left, 8, 12)[:, 4:].any()
    )


@pytest.mark.parametrize("level, params", [(1, 1731), (2, 112451), (3, 555075), (4, 3505219), (5, 12944451)])
def test_decoder_parameter_counts_are_the_papers(level, params):
    if level == 5:
        assert sum(3 * 3 * i * o + o for _, i, o, _ in decoders.plan(5)) == params  # without building 52 MB
        return
    assert decoders.build_decoder(level).count_params() == params


def test_decoder_mirrors_the_encoder_and_undoes_its_pooling():
    steps = decoders.plan(3)
    assert [s[0] for s in steps] == ["dec3_1", "dec2_2", "dec2_1", "dec1_2", "dec1_1"]
    assert [s[3] for s in steps] == [True, False, True, False, False] and steps[-1][2] == 3
    widths = decoders.widths_of(tiny_layers())
    for level in decoders.LEVELS:
        model = decoders.build_decoder(level, widths, precision="bfloat16" if level == 4 else "float32")
        f = np.zeros((2, 3, 5, widths[level]), np.float32)
        y = model(f)
        assert y.shape == (2, 3 * 2 ** (level - 1), 5 * 2 ** (level - 1), 3) and y.dtype.name == "float32"
        assert decoders.crop_to(y, 2, 4).shape == (2, 2, 4, 3)
    with pytest.raises(ValueError, match="level must be one of"):
        decoders.build_decoder(6)


def test_a_decoder_file_round_trips_and_refuses_another_level(tmp_path):
    widths = decoders.widths_of(tiny_layers())
    model = decoders.build_decoder(2, widths)
    path = tmp_path / decoders.decoder_file(2)
    decoders.write_decoder(model, path, {"level": 2})
    again = decoders.load_decoder(path, 2, widths)
    for a, b in zip(model.weights, again.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert decoders.read_meta(path)["level"] == 2
    with pytest.raises(WeightsError, match="not the relu3_1 decoder"):
        decoders.load_decoder(path, 3, widths)
    decoders.write_decoder(decoders.build_decoder(3, widths), tmp_path / "d3.npz", {"level": 3})
    with pytest.raises(
        WeightsError, match="not the relu2_1 decoder .it is relu3_1's."
    ):  # holds 2's layers too
        decoders.load_decoder(tmp_path / "d3.npz", 2, widths)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match="not a readable decoder file"):
        decoders.read_meta(tmp_path / "junk.npz")


# --- the method on the seam ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wct_inputs(tmp_path_factory):
    """Tiny VGG weights (.npz), random decoders for them at every level, two styles, a content."""
    root = tmp_path_factory.mktemp("wct")
    weights.write_npz(tiny_layers(), root / "tiny.npz")
    vgg = weights.read_weights(root / "tiny.npz")
    (root / "decoders").mkdir()
    encoder = {"source": vgg.source, "path": vgg.path, "sha256": vgg.sha256, "pooling": "max"}
    for level in decoders.LEVELS:
        model = decoders.build_decoder(level, decoders.widths_of(vgg.layers))
        decoders.write_decoder(model, root / "decoders" / decoders.decoder_file(level), {"encoder": encoder})
    write_fast_inputs(root)
    return root


def stylise(root, out, style="style1", **changes):
    settings = WCTSettings(width=48, height=32, decoder=str(root / "decoders"), **changes)
    styles = [root / f"{name}.png" for name in style.split(",")]
    path = single.run(
        root / "content.png", styles, out, settings, root / "tiny.npz", log=QUIET, method=get("wct")
    )
    return images.load_image(out / report.FINAL_IMAGE), path


def test_wct_runs_through_the_seam_and_strength_zero_ignores_the_style(wct_inputs, tmp_path):
    styled, path = stylise(wct_inputs, tmp_path / "a")
    assert styled.shape == (32, 48, 3)
    record = json.loads((tmp_path / "a" / report.RUN_JSON).read_text())
    assert record["method"] == "wct" and record["status"] == "complete"
    assert set(record["models"]) == {f"decoder_relu{level}_1" for level in decoders.LEVELS}
    assert set(record["final_costs"]) == {"iteration", "content", "style"}
    settings = WCTSettings(width=48, height=32, decoder=str(wct_inputs / "decoders"), strength=0.0)
    engine = get("wct").engine(settings, weights.read_weights(wct_inputs / "tiny.npz"))
    content = images.load_image(wct_inputs / "content.png")
    first = [engine.prepare_style([images.load_image(wct_inputs / f"style{k}.png")]) for k in (1, 2)]
    zero = [next(next(engine.stages([content], [s])).steps()).image for s in first]
    np.testing.assert_array_equal(zero[0], zero[1])  # strength 0: the content's features, decoded


def test_wct_blends_two_styles_and_masks_them_to_regions(wct_inputs, tmp_path):
    masks = f"{wct_inputs / 'left.png'},{wct_inputs / 'right.png'}"
    blended, _ = stylise(wct_inputs, tmp_path / "b", "style1,style2", style_blend_weights=(0.3, 0.7))
    masked, _ = stylise(wct_inputs, tmp_path / "m", "style1,style2", style_masks=masks, wct_levels="2,1")
    assert blended.shape == masked.shape == (32, 48, 3)
    with pytest.raises(SettingError, match="style_masks: has 1 masks for 2 style images"):
        stylise(wct_inputs, tmp_path / "x", "style1,style2", style_masks=str(wct_inputs / "left.png"))


def test_wct_settings_check_levels_and_strength(tmp_path):
    with pytest.raises(SettingError, match="wct_levels=5,5"):
        WCTSettings(wct_levels="5,5").levels()
    assert WCTSettings(wct_levels="1,3").levels() == (3, 1)
    with pytest.raises(SettingError, match="strength=2"):
        WCTSettings(strength=2.0, decoder=str(tmp_path)).validate()


def test_a_decoder_for_other_vgg_weights_is_refused(wct_inputs, tmp_path):
    weights.write_npz(tiny_layers(seed=1), tmp_path / "other.npz")
    settings = WCTSettings(width=48, height=32, decoder=str(wct_inputs / "decoders"), wct_levels="1")
    with pytest.raises(SettingError, match="was trained for other VGG-19 weights"):
        get("wct").engine(settings, weights.read_weights(tmp_path / "other.npz"))


def test_without_decoders_wct_refuses_in_one_line_naming_the_file_and_the_command(wct_inputs, tmp_path):
    import subprocess

    args = ["--method", "wct", "--content", str(wct_inputs / "content.png"), "--style"]
    args += [str(wct_inputs / "style1.png"), "--decoder", str(tmp_path / "none"), "--weights"]
    args += [str(wct_inputs / "tiny.npz"), "--output_dir", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf.run", *args], cwd=REPO, capture_output=True, text=True
    )
    missing = tmp_path / "none" / "decoder_relu5_1.npz"
    command = f"python -m nst_tf.train --method wct --level 5 --data MANIFEST --out {tmp_path / 'none'}"
    assert done.returncode == 2, done.stderr
    assert (
        done.stderr
        == f"error: --decoder: no trained relu5_1 model: {missing} is missing; train it with: {command}\n"
    )
    assert not (tmp_path / "out").exists()


def test_wcts_settings_are_flags_of_nst_tf_run(wct_inputs):
    from absl.testing import flagsaver

    from nst_tf.cli import flags as cli_flags
    from nst_tf.cli import run as cli_run

    argv = ["run", "--method", "wct", "--strength", "0.5", "--wct_levels", "3,1", "--decoder"]
    argv += [str(wct_inputs / "decoders"), "--style_masks", "a.png,b.png", "--width", "64"]
    with flagsaver.flagsaver():
        cli_run.FLAGS.unparse_flags()
        cli_run.FLAGS(argv)
        settings = cli_flags.settings_from_flags(get("wct"))
    assert isinstance(settings, WCTSettings) and settings.strength == 0.5 and settings.levels() == (3, 1)
    assert settings.mask_paths() == ["a.png", "b.png"] and settings.width == 64
    assert set(get("wct").files(settings)) == {"decoder_relu3_1", "decoder_relu1_1"}


def test_a_flag_whose_default_differs_by_method_takes_each_methods_own():
    """--strength: WCT's default 0.6, AdaIN's 1 (the package's decoders); the flag shows neither."""
    from absl.testing import flagsaver

    from nst_tf.cli import flags as cli_flags
    from nst_tf.cli import run as cli_run

    assert cli_run.FLAGS["strength"].default is None and "wct 0.6, adain 1" in cli_run.FLAGS["strength"].help
    for method, want in (("wct", 0.6), ("adain", 1.0)):
        with flagsaver.flagsaver():
            cli_run.FLAGS.unparse_flags()
            cli_run.FLAGS(["run", "--method", method])
            assert cli_flags.settings_from_flags(get(method)).strength == want


def test_wct_batch_and_beam_give_the_images_of_nst_tf_run(wct_inputs, tmp_path):
    """Through the seam: the local batch, the Beam pipeline and single runs write the same pictures."""
    from nst_tf.app import batch

    settings = WCTSettings(width=48, height=32, decoder=str(wct_inputs / "decoders"), wct_levels="3,1")
    pairs = batch.every_pair(
        [str(wct_inputs / "content.png")], [str(wct_inputs / f"style{k}.png") for k in (1, 2)]
    )
    rows = batch.run_batch(
        pairs, tmp_path / "batch", settings, wct_inputs / "tiny.npz", fmt="png", log=QUIET, method=get("wct")
    )
    assert [r["status"] for r in rows] == ["ok", "ok"]
    engine = get("wct").engine(settings, weights.read_weights(wct_inputs / "tiny.npz"))
    content = images.load_image(wct_inputs / "content.png")
    for k, row in zip((1, 2), rows):  # what one image through the engine (as nst_tf.run) gives
        style = engine.prepare_style([images.load_image(wct_inputs / f"style{k}.png")])
        alone = images.deprocess(next(next(engine.stages([content], [style])).steps()).image).astype(int)
        together = images.load_image(tmp_path / "batch" / f"{row['pair']}.png").astype(int)
        assert np.abs(alone - together).max() <= 1, row["pair"]
    pytest.importorskip("apache_beam")
    from nst_tf.app import beam

    beamed = beam.run_pipeline(
        pairs,
        str(tmp_path / "beam"),
        settings,
        str(wct_inputs / "tiny.npz"),
        "png",
        log=QUIET,
        method=get("wct"),
    )
    assert [r["status"] for r in beamed] == ["ok", "ok"]
    for a, b in zip(rows, beamed):
        assert (tmp_path / "batch" / f"{a['pair']}.png").read_bytes() == (
            tmp_path / "beam" / f"{b['pair']}.png"
        ).read_bytes()


def test_wct_over_its_memory_budget_is_refused_in_one_line(wct_inputs, tmp_path):
    """--max_memory is honoured: a size that would not fit even in tiles is refused, nothing written."""
    import subprocess

    args = ["--method", "wct", "--content", str(wct_inputs / "content.png"), "--style"]
    args += [str(wct_inputs / "style1.png"), "--decoder", str(wct_inputs / "decoders"), "--weights"]
    args += [str(wct_inputs / "tiny.npz"), "--output_dir", str(tmp_path / "out"), "--width", "4096"]
    args += ["--height", "4096", "--max_memory", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf.run", *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: --max_memory: WCT at 4096x4096 needs about ")
    assert "GiB here, even in tiles; the budget is 2.0 GiB: give more" in done.stderr
    assert not (tmp_path / "out").exists()


def test_wct_in_tiles_gives_the_untiled_image(wct_inputs):
    """Images over the memory budget go through in tiles: statistics over the tiles' cores (pass 1),
    then each tile transformed and decoded with margins over both receptive fields (pass 2)."""
    from nst_tf.methods.wct.method import margins, tile_core

    assert margins(1) == (16, 16) and all(m % 16 == 0 for m in margins(5))
    vgg = weights.read_weights(wct_inputs / "tiny.npz")
    rng = np.random.default_rng(7)
    content = np.asarray(
        Image.fromarray(rng.integers(0, 255, (12, 16, 3)).astype(np.uint8)).resize((320, 240), Image.BICUBIC)
    )
    styles = [images.load_image(wct_inputs / f"style{k}.png") for k in (1, 2)]
    masks = f"{wct_inputs / 'left.png'},{wct_inputs / 'right.png'}"
    for changes in ({}, {"style_blend_weights": (0.3, 0.7)}, {"style_masks": masks}):
        settings = WCTSettings(
            width=320, height=240, decoder=str(wct_inputs / "decoders"), wct_levels="5,1", **changes
        )
        engine = get("wct").engine(settings, vgg)
        chosen = styles if changes else styles[:1]
        inputs = base.prepare_inputs(content, chosen, settings)
        masked = masks_for(settings, len(chosen))
        whole = engine.stylise(inputs, settings, masked, core=0)
        engine.style_cache.clear()  # the styles' statistics gathered in tiles too
        tiled = engine.stylise(inputs, settings, masked, core=64)
        assert np.abs(whole - inputs.content).mean() > 5  # it did something
        np.testing.assert_allclose(tiled, whole, atol=0.05, err_msg=str(changes))
    assert tile_core(settings, (240, 320), inputs.styles) == 0  # this machine: no need to tile
    small = dataclasses.replace(settings, max_memory=resident_bytes() / 2**30 + 2)  # 2 GiB free
    assert 64 <= tile_core(small, (2000, 2000), inputs.styles) < 2000  # 15 GB untiled: tiles


def test_an_engine_encodes_a_style_once_for_all_its_levels(wct_inputs):
    """One pass to the deepest level gives every level's style statistics (and a second content in
    the same style encodes no style); they equal each level's own encoding's."""
    settings = WCTSettings(width=48, height=32, decoder=str(wct_inputs / "decoders"), wct_levels="4,2,1")
    engine = get("wct").engine(settings, weights.read_weights(wct_inputs / "tiny.npz"))
    style = images.load_image(wct_inputs / "style1.png")
    inputs = base.prepare_inputs(images.load_image(wct_inputs / "content.png"), [style], settings)
    passes = []
    encode_levels = engine.encode_levels
    engine.encode_levels = lambda x: passes.append(x.shape) or encode_levels(x)
    first = engine.stylise(inputs, settings)
    np.testing.assert_array_equal(engine.stylise(inputs, settings), first)
    assert len(passes) == 1 and len(engine.style_cache) == 3
    s = inputs.styles[0]
    for level in (4, 2, 1):
        f = engine.encode[level](tf.constant(s))
        mean, root = transforms.colouring(transforms.mean_and_covariance(f))
        cached_mean, cached_root = engine.style_statistics(level, s, 0)
        np.testing.assert_allclose(cached_mean, mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(cached_root, root, rtol=1e-5, atol=1e-5)


def test_the_decoders_padding_and_upsampling_are_tf_pads_and_keras_ones():
    """The faster layers give the numbers of the plain ones: the padding (slices and concatenations)
    exactly, the upsampling fused into the next convolution (`UpsampleConv2D`) up to rounding."""
    x = tf.random.normal([2, 7, 9, 5], seed=3)
    mirror = lambda p: lambda t: tf.pad(t, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")  # noqa: E731
    for p in (1, 2, 3):
        np.testing.assert_array_equal(decoders.ReflectionPad2D(p)(x).numpy(), mirror(p)(x).numpy())
    fused = decoders.UpsampleConv2D(4, activation="relu")
    fused.build(x.shape)
    fused.bias.assign(tf.random.normal([4], seed=5))
    conv = tf.keras.layers.Conv2D(4, 3, activation="relu")
    conv.build((None, None, None, 5))
    conv.set_weights(fused.get_weights())
    keras_up = tf.keras.layers.UpSampling2D(2, interpolation="nearest")
    plain = lambda t: conv(mirror(1)(keras_up(t)))  # noqa: E731
    for ours, theirs, training in [  # and their gradients, decoding and in a training step
        (decoders.ReflectionPad2D(2), mirror(2), None),
        (decoders.ReflectionPad2D(1), mirror(1), True),
        (fused, plain, None),
    ]:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            a, b = ours(x, training=training), theirs(x)
            weights = tf.random.stateless_normal(a.shape, [1, 2])
            loss_a, loss_b = tf.reduce_sum(a * weights), tf.reduce_sum(b * weights)
        assert a.shape == b.shape
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
        sources = [x, *ours.weights]  # and the convolution's kernel and bias
        got = tape.gradient(loss_a, sources)
        want = tape.gradient(loss_b, [x, *conv.weights][: len(sources)])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-5, atol=1e-4)
    half = decoders.UpsampleConv2D(4, activation="relu", dtype="mixed_bfloat16")
    half.build(x.shape)
    half.set_weights(fused.get_weights())
    y = half(x)
    assert y.dtype == tf.bfloat16 and y.shape == (2, 14, 18, 4)
    np.testing.assert_allclose(y.numpy().astype(np.float32), plain(x).numpy(), rtol=0.05, atol=0.05)
    model = decoders.build_decoder(2, precision="bfloat16")
    assert model(tf.zeros([1, 5, 6, 128])).shape == (1, 10, 12, 3)
