"""AdaIN: the transform against numpy, the method on the seam (strength, blends, masks, tiles, batch,
Beam) with a tiny random decoder, and a few steps of its training that lower the loss and resume
exactly."""

import dataclasses
import json
import os
import signal

import numpy as np
import pytest
from conftest import tiny_layers, write_fast_inputs
from PIL import Image

from nst_tf import images
from nst_tf.app import report, single
from nst_tf.errors import SettingError
from nst_tf.methods import base, get
from nst_tf.methods.adain import transforms as adain
from nst_tf.methods.adain.config import DECODER_FILE, AdaINSettings
from nst_tf.methods.wct import transforms
from nst_tf.nets import decoder as decoders
from nst_tf.nets import weights
from nst_tf.train import session, ship
from nst_tf.train.options import TrainOptions

QUIET = lambda message: None  # noqa: E731


def np_adain(content, style, eps=1e-5):
    """The reference code's AdaIN in numpy, per image and channel (unbiased variance + eps)."""
    axes = (1, 2)
    n_c, n_s = content.shape[1] * content.shape[2], style.shape[1] * style.shape[2]
    mc, ms = content.mean(axes, keepdims=True), style.mean(axes, keepdims=True)
    sc = np.sqrt(content.var(axes, keepdims=True) * n_c / (n_c - 1) + eps)
    ss = np.sqrt(style.var(axes, keepdims=True) * n_s / (n_s - 1) + eps)
    return (content - mc) / sc * ss + ms


def test_adain_gives_each_channel_the_styles_mean_and_std_as_numpy_computes():
    rng = np.random.default_rng(0)
    content = rng.normal(3, 2, (2, 5, 7, 6)).astype(np.float64) * rng.uniform(0.1, 9, 6)
    style = rng.normal(-1, 4, (2, 4, 3, 6)).astype(np.float64) * rng.uniform(0.1, 9, 6)
    got = adain.adaptive_instance_normalization(content.astype(np.float32), style.astype(np.float32))
    np.testing.assert_allclose(got.numpy(), np_adain(content, style), rtol=1e-4, atol=1e-4)
    out_mean = got.numpy().mean((1, 2))
    np.testing.assert_allclose(out_mean, style.mean((1, 2)), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="channels differ"):
        adain.adaptive_instance_normalization(content[..., :5], style)


def test_the_inference_map_from_gathered_moments_is_the_batched_adain():
    """What the engine applies (Moments(diagonal) over tiles, LinearMap.adain) equals the formula."""
    rng = np.random.default_rng(1)
    content = (rng.normal(0, 1, (1, 9, 8, 5)) * rng.uniform(0.5, 30, 5)).astype(np.float32)
    style = (rng.normal(2, 1, (1, 6, 6, 5)) * rng.uniform(0.5, 30, 5)).astype(np.float32)
    moments = transforms.Moments(diagonal=True)
    rows = content.reshape(-1, 5)
    for start in range(0, 72, 20):  # in pieces, as tiles are gathered
        moments.add(rows[start : start + 20], chunk=7)
    mean, var = moments.result()
    # float32 rows: each chunk's sums in float32 (~1e-7 relative), the totals in float64
    np.testing.assert_allclose(var.numpy(), rows.astype(np.float64).var(0, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(mean.numpy(), rows.mean(0), rtol=1e-6)
    style_stats = transforms.Moments(diagonal=True).add(style.reshape(-1, 5)).result()
    mapped = transforms.LinearMap.adain((mean, var), style_stats)(rows).numpy().reshape(content.shape)
    np.testing.assert_allclose(mapped, np_adain(content, style), rtol=1e-4, atol=1e-3)
    other = (style * 0.5 + 3).reshape(-1, 5)
    other_stats = transforms.Moments(diagonal=True).add(other).result()
    mapped_other = transforms.LinearMap.adain((mean, var), other_stats)(rows).numpy().reshape(content.shape)
    coloured = [transforms.adain_colouring(s) for s in (style_stats, other_stats)]
    blend = transforms.LinearMap.adain_coloured(
        (mean, var), transforms.blend_colourings(coloured, [0.3, 0.7])
    )
    want = 0.3 * mapped + 0.7 * mapped_other  # interpolation of the AdaIN targets
    np.testing.assert_allclose(blend(rows).numpy().reshape(content.shape), want, rtol=1e-5, atol=1e-3)


def test_the_style_loss_is_the_channel_statistics_distance():
    rng = np.random.default_rng(2)
    f, s = rng.normal(0, 3, (2, 4, 4, 3)), rng.normal(1, 2, (2, 5, 5, 3))
    axes, eps = (1, 2), 1e-5

    def std(x):
        n = x.shape[1] * x.shape[2]
        return np.sqrt(x.var(axes) * n / (n - 1) + eps)

    want = np.mean((f.mean(axes) - s.mean(axes)) ** 2) + np.mean((std(f) - std(s)) ** 2)
    got = adain.statistics_distance(f.astype(np.float32), s.astype(np.float32))
    np.testing.assert_allclose(float(got), want, rtol=1e-4)


@pytest.fixture(scope="module")
def adain_inputs(tmp_path_factory):
    """Tiny VGG weights (.npz), a random AdaIN decoder for them, two styles, a content, two masks."""
    root = tmp_path_factory.mktemp("adain")
    weights.write_npz(tiny_layers(), root / "tiny.npz")
    vgg = weights.read_weights(root / "tiny.npz")
    (root / "decoders").mkdir()
    encoder = {"source": vgg.source, "path": vgg.path, "sha256": vgg.sha256, "pooling": "max"}
    model = decoders.build_decoder(4, decoders.widths_of(vgg.layers))
    meta = {"method": "adain", "level": 4, "encoder": encoder}
    decoders.write_decoder(model, root / "decoders" / DECODER_FILE, meta)
    wct_meta = {"method": "wct", "level": 4, "encoder": encoder}
    (root / "wct").mkdir()
    decoders.write_decoder(model, root / "wct" / DECODER_FILE, wct_meta)  # the right name, the wrong method
    write_fast_inputs(root)
    return root


def settings_for(root, **changes):
    return AdaINSettings(**{"width": 48, "height": 32, "decoder": str(root / "decoders"), **changes})


def one_pass(root, settings, styles, content=None):
    engine = get("adain").engine(settings, weights.read_weights(root / "tiny.npz"))
    content = images.load_image(root / "content.png") if content is None else content
    style = engine.prepare_style([images.load_image(root / f"{s}.png") for s in styles])
    return next(next(engine.stages([content], [style])).steps())


def test_adain_runs_through_the_seam_and_strength_zero_is_the_decoders_reconstruction(adain_inputs, tmp_path):
    root = adain_inputs
    path = single.run(
        root / "content.png", [root / "style1.png"], tmp_path, settings_for(root), root / "tiny.npz",
        log=QUIET, method=get("adain"),
    )  # fmt: skip
    assert images.load_image(tmp_path / report.FINAL_IMAGE).shape == (32, 48, 3) and path.exists()
    record = json.loads((tmp_path / report.RUN_JSON).read_text())
    assert record["method"] == "adain" and record["status"] == "complete"
    assert set(record["models"]) == {"adain_decoder"} and set(record["final_costs"]) >= {"content", "style"}
    zero = [one_pass(root, settings_for(root, strength=0.0), [s]).image for s in ("style1", "style2")]
    np.testing.assert_array_equal(zero[0], zero[1])  # the style is not used at all
    vgg = weights.read_weights(root / "tiny.npz")
    from nst_tf.nets.vgg import build_vgg

    encoder = build_vgg(vgg, "max", outputs=["conv4_1"])
    decoder = decoders.load_decoder(root / "decoders" / DECODER_FILE, 4, decoders.widths_of(vgg.layers))
    x = images.reshape_and_normalize_image(images.resize_to(images.load_image(root / "content.png"), 48, 32))
    rebuilt = np.clip(
        decoders.crop_to(decoder(encoder(x)["conv4_1"]), 32, 48).numpy(), -images.MEANS, 255 - images.MEANS
    )
    np.testing.assert_allclose(zero[0], rebuilt, atol=1e-3)
    half = one_pass(root, settings_for(root, strength=0.5), ["style1"]).image
    full = one_pass(root, settings_for(root), ["style1"]).image
    assert 0 < np.abs(half - zero[0]).mean() < np.abs(full - zero[0]).mean()


def test_adain_blends_the_targets_and_masks_each_style_to_its_region(adain_inputs):
    root = adain_inputs
    one = one_pass(root, settings_for(root), ["style1"]).image
    same = one_pass(root, settings_for(root, style_blend_weights=(0.5, 0.5)), ["style1", "style1"]).image
    np.testing.assert_allclose(same, one, atol=1e-3)  # a blend of a style with itself is that style
    two = one_pass(root, settings_for(root, style_blend_weights=(0.3, 0.7)), ["style1", "style2"]).image
    spread = np.abs(one - one.mean()).mean()  # a random decoder's outputs are small: compare to them
    assert np.abs(two - one).mean() > 0.05 * spread
    masks = f"{root / 'left.png'},{root / 'right.png'}"
    masked = one_pass(root, settings_for(root, style_masks=masks), ["style1", "style2"]).image
    assert masked.shape == one.shape and np.abs(masked - two).mean() > 0.05 * spread
    with pytest.raises(SettingError, match="style_masks: has 1 masks for 2 style images"):
        one_pass(root, settings_for(root, style_masks=str(root / "left.png")), ["style1", "style2"])


def test_adain_in_tiles_gives_the_untiled_image(adain_inputs):
    root = adain_inputs
    rng = np.random.default_rng(7)
    content = np.asarray(
        Image.fromarray(rng.integers(0, 255, (12, 16, 3)).astype(np.uint8)).resize((320, 240), Image.BICUBIC)
    )
    styles = [images.load_image(root / f"style{k}.png") for k in (1, 2)]
    masks = f"{root / 'left.png'},{root / 'right.png'}"
    from nst_tf.methods.wct.method import masks_for

    for changes in ({}, {"style_masks": masks}):
        settings = settings_for(root, width=320, height=240, **changes)
        engine = get("adain").engine(settings, weights.read_weights(root / "tiny.npz"))
        chosen = styles if changes else styles[:1]
        inputs = base.prepare_inputs(content, chosen, settings)
        masked = masks_for(settings, len(chosen))
        whole = engine.stylise(inputs, settings, masked, core=0)
        tiled = engine.stylise(inputs, settings, masked, core=64)
        assert np.abs(whole - inputs.content).mean() > 5
        np.testing.assert_allclose(tiled, whole, atol=0.05, err_msg=str(changes))


def test_a_wct_decoder_or_a_missing_one_is_refused_naming_the_command(adain_inputs, tmp_path):
    root = adain_inputs
    vgg = weights.read_weights(root / "tiny.npz")
    with pytest.raises(SettingError, match="is a decoder of --method wct, not of adain"):
        get("adain").engine(settings_for(root, decoder=str(root / "wct")), vgg)
    with pytest.raises(SettingError) as refused:
        settings_for(root, decoder=str(tmp_path)).validate()
    assert str(refused.value) == (
        f"decoder: no trained model: {tmp_path / DECODER_FILE} is missing; train it with: "
        f"python -m nst_tf.train --method adain --data MANIFEST --out {tmp_path}"
    )
    with pytest.raises(SettingError, match="strength=1.5: must be in"):
        settings_for(root, strength=1.5).validate()


def test_adain_batch_and_beam_give_the_images_of_one_pass(adain_inputs, tmp_path):
    from nst_tf.app import batch

    root = adain_inputs
    settings = settings_for(root)
    pairs = batch.every_pair([str(root / "content.png")], [str(root / f"style{k}.png") for k in (1, 2)])
    rows = batch.run_batch(
        pairs, tmp_path / "batch", settings, root / "tiny.npz", fmt="png", log=QUIET, method=get("adain")
    )
    assert [r["status"] for r in rows] == ["ok", "ok"]
    for k, row in zip((1, 2), rows):
        alone = images.deprocess(one_pass(root, settings, [f"style{k}"]).image).astype(int)
        together = images.load_image(tmp_path / "batch" / f"{row['pair']}.png").astype(int)
        assert np.abs(alone - together).max() <= 1, row["pair"]
    pytest.importorskip("apache_beam")
    from nst_tf.app import beam

    beamed = beam.run_pipeline(
        pairs, str(tmp_path / "beam"), settings, str(root / "tiny.npz"), "png", log=QUIET, method=get("adain")
    )
    assert [r["status"] for r in beamed] == ["ok", "ok"]
    for a, b in zip(rows, beamed):
        assert (tmp_path / "batch" / f"{a['pair']}.png").read_bytes() == (
            tmp_path / "beam" / f"{b['pair']}.png"
        ).read_bytes()


# --- training -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tiny VGG weights and a manifest of four photos and three styles, one of each held out."""
    root = tmp_path_factory.mktemp("adain_train")
    weights.write_npz(tiny_layers(), root / "tiny.npz")
    rng, records = np.random.default_rng(0), []
    for kind, n in (("photo", 4), ("style", 3)):
        (root / kind).mkdir()
        for i in range(n):
            coarse = rng.integers(0, 255, (5, 6, 3)).astype(np.uint8)
            Image.fromarray(coarse).resize((48 + 8 * i, 40), Image.Resampling.BICUBIC).save(
                root / f"{kind}/{i}.png"
            )
            split = "heldout" if i == n - 1 else "train"
            records.append({"file": f"{kind}/{i}.png", "kind": kind, "split": split})
    (root / "manifest.json").write_text(json.dumps({"files": records}))
    return root


def options(data, out, **changes):
    fields = dict(method="adain", data=str(data / "manifest.json"), out=str(out), iterations=3, batch_size=2)
    fields.update(crop=32, save_every=2, preview_every=2, precision="float32", weights=str(data / "tiny.npz"))
    return TrainOptions(**{**fields, **changes})


def test_training_lowers_the_loss_and_an_interrupted_run_resumes_exactly(data, tmp_path):
    steps = []
    model = session.train(
        options(data, tmp_path / "whole", iterations=30, learning_rate=1e-3), log=QUIET, show=steps.append
    )
    first, last = (
        np.mean([s.losses["total"] for s in steps[:5]]),
        np.mean([s.losses["total"] for s in steps[-5:]]),
    )
    assert last < 0.8 * first, (first, last)
    run = tmp_path / "whole" / "adain"
    record = json.loads((run / session.PROVENANCE_JSON).read_text())
    assert record["method"] == "adain" and set(record["final_losses"]) == {
        "iteration",
        "total",
        "content",
        "style",
        "grid",
        "seconds",
    }
    assert np.asarray(Image.open(run / "previews" / "30.png")).shape == (64, 32, 3)
    assert decoders.read_meta(model)["method"] == "adain"

    def stop_after_two(step):
        if step.iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    short = options(data, tmp_path / "a", iterations=4)
    whole = session.train(short, log=QUIET)
    with pytest.raises(session.Interrupted, match="interrupted after step 2"):
        session.train(options(data, tmp_path / "b", iterations=4), log=QUIET, show=stop_after_two)
    resumed = session.resume(options(data, tmp_path / "b", iterations=4), ["iterations"], log=QUIET)
    with np.load(whole) as a, np.load(resumed) as b:
        for name in a.files:
            if name != "meta":
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_training_starts_from_a_given_decoder_and_refuses_what_does_not_fit(data, tmp_path):
    vgg = weights.read_weights(data / "tiny.npz")
    start = tmp_path / "start.npz"
    model = decoders.build_decoder(4, decoders.widths_of(vgg.layers))
    decoders.write_decoder(model, start, {"level": 4})
    session.train(options(data, tmp_path / "out", iterations=1, init_from=str(start)), log=QUIET)
    record = json.loads((tmp_path / "out" / "adain" / session.PROVENANCE_JSON).read_text())
    assert record["init_from"]["path"] == str(start)
    first = session.train(options(data, tmp_path / "s1", iterations=2), log=QUIET)
    second = session.train(
        options(data, tmp_path / "s2", iterations=1, crop=48, init_from=str(first), style_hue=0.25), log=QUIET
    )
    carried = decoders.read_meta(second)["stages"]  # a later session goes on with other settings
    assert [(s["steps"], s["crop"]) for s in carried] == [(2, 32), (1, 48)]
    record = json.loads((tmp_path / "s2" / "adain" / session.PROVENANCE_JSON).read_text())
    assert record["stages"] == carried
    assert ship.summary(record)["iterations_all_stages"] == 3
    decoders.write_decoder(
        decoders.build_decoder(2, decoders.widths_of(vgg.layers)), tmp_path / "l2.npz", {"level": 2}
    )
    with pytest.raises(SettingError, match="init_from"):
        session.train(options(data, tmp_path / "bad", init_from=str(tmp_path / "l2.npz")), log=QUIET)
    with pytest.raises(SettingError, match="style_weight"):
        session.train(options(data, tmp_path / "w", method="wct", level=2, style_weight=3.0), log=QUIET)
    with pytest.raises(SettingError, match="style_hue"):
        session.train(options(data, tmp_path / "w", method="wct", level=2, style_hue=0.2), log=QUIET)
    with pytest.raises(SettingError, match="style_hue=0.7"):
        options(data, tmp_path / "w", style_hue=0.7).validate()
    photos_only = tmp_path / "photos.json"
    listed = json.loads((data / "manifest.json").read_text())["files"]
    photos_only.write_text(
        json.dumps({"files": [dict(r, file=str(data / r["file"])) for r in listed if r["kind"] == "photo"]})
    )
    with pytest.raises(SettingError, match="AdaIN trains on styles too"):
        session.train(dataclasses.replace(options(data, tmp_path / "p"), data=str(photos_only)), log=QUIET)


def test_a_trained_adain_decoder_ships_with_its_held_out_losses_and_runs_from_its_folder(data, tmp_path):
    from nst_tf.train import ship

    session.train(options(data, tmp_path / "run", iterations=2), log=QUIET)
    to = tmp_path / "models"
    entry = ship.ship(tmp_path / "run" / "adain", to, "float16", weights=str(data / "tiny.npz"), log=QUIET)
    losses = entry["heldout_losses"]
    assert losses["photos"] == losses["styles"] == 1 and "psnr_db" not in entry
    assert set(losses["demo_stored"]) == {"content", "style", "strength0_psnr_db", "pairs"}
    assert (
        abs(losses["trained"]["style"] - losses["stored"]["style"]) < 0.05 * losses["trained"]["style"] + 1e-6
    )
    assert entry["provenance"]["settings"]["style_weight"] == TrainOptions.style_weight
    readme = (to / "README.md").read_text()
    assert "| `adain_decoder.npz` |" in readme and "PSNR held out" not in readme
    settings = AdaINSettings(width=48, height=32, decoder=str(to))
    engine = get("adain").engine(settings, weights.read_weights(data / "tiny.npz"))  # checksum verified
    assert set(engine.decoders) == {4}


def test_an_engine_encodes_each_style_once(adain_inputs):
    root = adain_inputs
    settings = settings_for(root)
    engine = get("adain").engine(settings, weights.read_weights(root / "tiny.npz"))
    content = images.load_image(root / "content.png")
    styles = [engine.prepare_style([images.load_image(root / f"style{k}.png")]) for k in (1, 2, 1)]
    out = [next(next(engine.stages([content], [s])).steps()).image for s in styles]
    assert len(engine.style_cache) == 4  # style1 the second time came from the cache (level 4, judged)
    np.testing.assert_array_equal(out[0], out[2])
    assert np.abs(out[0] - out[1]).max() > 0
