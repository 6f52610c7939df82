"""`nst_tf.train`: a few steps of WCT decoder training at 32 px, its files, exact resume, one-line errors."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO, tiny_layers
from PIL import Image

from nst_tf import files
from nst_tf.errors import SettingError, WeightsError
from nst_tf.methods.wct import training as wct_training
from nst_tf.methods.wct.training import reconstruction_losses
from nst_tf.nets import decoder as decoders
from nst_tf.nets import weights
from nst_tf.train import session, tasks
from nst_tf.train.options import TrainOptions

QUIET = lambda message: None  # noqa: E731


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Tiny VGG weights and a manifest of four photos, one held out."""
    root = tmp_path_factory.mktemp("train")
    weights.write_npz(tiny_layers(), root / "tiny.npz")
    (root / "photos").mkdir()
    rng, records = np.random.default_rng(0), []
    for i in range(4):
        coarse = rng.integers(0, 255, (5, 6, 3)).astype(np.uint8)
        Image.fromarray(coarse).resize((48 + 8 * i, 40), Image.Resampling.BICUBIC).save(
            root / f"photos/p{i}.png"
        )
        records.append(
            {"file": f"photos/p{i}.png", "kind": "photo", "split": "train" if i < 3 else "heldout"}
        )
    (root / "manifest.json").write_text(json.dumps({"files": records}))
    return root


def options(data, out, **changes):
    fields = dict(
        level=2, data=str(data / "manifest.json"), out=str(out), iterations=3, batch_size=2, crop=32
    )
    fields.update(save_every=2, preview_every=2, precision="float32", weights=str(data / "tiny.npz"))
    return TrainOptions(**{**fields, **changes})


def test_reconstruction_losses_are_pixel_plus_feature_mean_squares():
    rng = np.random.default_rng(1)
    x, y, f, g = (
        rng.normal(0, 9, shape).astype(np.float32) for shape in [(2, 4, 4, 3)] * 2 + [(2, 2, 2, 5)] * 2
    )
    got = {k: float(v) for k, v in reconstruction_losses(x, y, f, g).items()}
    pixel, feature = np.mean((y - x) ** 2), np.mean((g - f) ** 2)
    np.testing.assert_allclose(
        [got["pixel"], got["feature"], got["total"]], [pixel, feature, pixel + feature], rtol=1e-5
    )


def test_the_grid_term_is_the_part_that_repeats_with_the_stride():
    """stride_grid against numpy: a pattern tiled every 8 px is found whole over a smooth image (a
    gradient and a wave), a pattern of another period or the smooth image alone give next to nothing."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:64, 0:80].astype(np.float32)
    smooth = np.stack([np.sin(xx / 9.0 + k) * 40 + yy for k in range(3)], -1)[None]
    pattern = rng.normal(0, 5, (1, 8, 8, 3)).astype(np.float32)
    pattern -= pattern.mean(axis=(1, 2), keepdims=True)
    tiled = np.tile(pattern, (1, 8, 10, 1))
    image = smooth + tiled
    box = np.lib.stride_tricks.sliding_window_view(image, (8, 8), axis=(1, 2)).mean(axis=(-2, -1))
    detail = image[:, 4 : 4 + 57, 4 : 4 + 73] - box  # the image less its 8 x 8 box mean
    phases = detail[:, :56, :72].reshape(1, 7, 8, 9, 8, 3).mean(axis=(1, 3))
    want = np.mean((phases - phases.mean(axis=(1, 2), keepdims=True)) ** 2)
    assert float(decoders.stride_grid(image, 8)) == pytest.approx(want, rel=1e-3)
    assert want == pytest.approx(np.mean(pattern**2), rel=0.05)
    assert float(decoders.stride_grid(smooth, 8)) < 0.02 * np.mean(pattern**2)
    other = np.tile(rng.normal(0, 5, (1, 7, 7, 3)).astype(np.float32), (1, 10, 12, 1))[:, :64, :80]
    assert float(decoders.stride_grid(smooth + other, 8)) < 0.05 * np.mean(other**2)
    got = reconstruction_losses(smooth, image, smooth[:, :8, :8], smooth[:, :8, :8], grid_weight=10, stride=8)
    assert float(got["grid"]) == pytest.approx(np.mean(pattern**2), rel=1e-4)  # y - x: the pattern alone
    assert float(got["total"]) == pytest.approx(np.mean(tiled**2) + 10 * np.mean(pattern**2), rel=1e-4)


def test_three_steps_give_finite_losses_a_model_previews_and_provenance(data, tmp_path):
    steps = []
    model = session.train(options(data, tmp_path, precision="bfloat16"), log=QUIET, show=steps.append)
    assert [s.iteration for s in steps] == [1, 2, 3] and steps[0].first and not steps[1].first
    assert all(np.isfinite(list(s.losses.values())).all() for s in steps)
    run = tmp_path / "wct_relu2_1"
    rows = session.read_losses(run / session.LOSSES_CSV)
    assert [r[0] for r in rows] == [1, 2, 3] and rows[-1][1] == pytest.approx(steps[-1].losses["total"])
    assert (run / "previews" / "2.png").is_file()
    assert np.asarray(Image.open(run / "previews" / "3.png")).shape == (64, 32, 3)  # photo over its rebuild
    record = json.loads((run / session.PROVENANCE_JSON).read_text())
    assert record["status"] == "complete" and record["iterations_done"] == 3
    assert record["data"]["sha256"] == files.sha256_of(data / "manifest.json")
    assert record["model"]["sha256"] == files.sha256_of(model) and record["training_seconds"] > 0
    assert record["settings"]["precision"] == "bfloat16" and record["task"]["level"] == 2
    assert {"cpu", "cpus", "device", "platform"} <= set(record["sessions"][0]["machine"])
    assert set(record["final_losses"]) == {"iteration", "total", "pixel", "feature", "grid", "seconds"}
    assert record["settings"]["grid_weight"] == wct_training.GRID_WEIGHT  # the method's default, kept
    assert "tensorflow" in record["versions"]
    assert decoders.read_meta(model)["steps"] == 3
    decoders.load_decoder(model, 2, decoders.widths_of(tiny_layers()))


def decoder_weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files if k != "meta"}


def test_an_interrupted_run_resumed_takes_exactly_the_steps_of_an_uninterrupted_one(data, tmp_path):
    """With a decaying rate (--lr_decay): its step count is part of the saved state."""

    def options_decaying(data, out, **changes):
        return options(data, out, **{"lr_decay": 0.3, **changes})

    whole = session.train(options_decaying(data, tmp_path / "whole", iterations=4), log=QUIET)

    def stop_after_two(step):
        if step.iteration == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a job system stops it: the loop stops after this step

    with pytest.raises(session.Interrupted, match="interrupted after step 2"):
        session.train(options_decaying(data, tmp_path / "cut", iterations=4), log=QUIET, show=stop_after_two)
    with pytest.raises(SettingError, match="already holds this run"):
        session.train(options_decaying(data, tmp_path / "cut", iterations=4), log=QUIET)
    with pytest.raises(SettingError, match="learning_rate was 0.0001 in this run"):
        session.resume(
            options_decaying(data, tmp_path / "cut", learning_rate=1e-3), ["learning_rate"], log=QUIET
        )
    resumed = session.resume(
        options_decaying(data, tmp_path / "cut", iterations=4), ["iterations"], log=QUIET
    )
    a, b = decoder_weights(whole), decoder_weights(resumed)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    rows = [
        session.read_losses(p / "wct_relu2_1" / session.LOSSES_CSV)
        for p in (tmp_path / "whole", tmp_path / "cut")
    ]
    assert [r[:4] for r in rows[0]] == [r[:4] for r in rows[1]]
    record = json.loads((tmp_path / "cut" / "wct_relu2_1" / session.PROVENANCE_JSON).read_text())
    assert [(s["from_step"], s["to_step"]) for s in record["sessions"]] == [(0, 2), (2, 4)]
    constant = decoder_weights(session.train(options(data, tmp_path / "constant", iterations=4), log=QUIET))
    assert any(not np.array_equal(a[name], constant[name]) for name in a)  # the decay is applied


def test_a_run_saved_before_the_grid_term_resumes_without_it(data, tmp_path):
    """A run's settings.json from before --grid_weight existed: it trained without the term, so
    it goes on without it (not with the method's new default), and --grid_weight cannot change that."""
    session.train(options(data, tmp_path, iterations=2, grid_weight=0.0), log=QUIET)
    run = tmp_path / "wct_relu2_1"
    saved = json.loads((run / session.SETTINGS_JSON).read_text())
    del saved["settings"]["grid_weight"]
    (run / session.SETTINGS_JSON).write_text(json.dumps(saved))
    with pytest.raises(SettingError, match="grid_weight was 0.0 in this run"):
        session.resume(options(data, tmp_path, iterations=3, grid_weight=5.0), ["grid_weight"], log=QUIET)
    model = session.resume(options(data, tmp_path, iterations=3), ["iterations"], log=QUIET)
    record = json.loads((run / session.PROVENANCE_JSON).read_text())
    assert record["iterations_done"] == 3 and "grid" not in record["final_losses"]
    assert decoders.read_meta(model)["stages"][-1]["grid_weight"] == 0.0


def test_bad_settings_are_named(data, tmp_path):
    with pytest.raises(SettingError, match="level=6: must be 1..5"):
        session.train(options(data, tmp_path, level=6), log=QUIET)
    with pytest.raises(SettingError, match="level is required"):
        session.train(options(data, tmp_path, level=None), log=QUIET)
    with pytest.raises(SettingError, match="is not a writable folder"):
        session.train(options(data, data / "manifest.json" / "out"), log=QUIET)
    with pytest.raises(SettingError, match="crop=40: must be a multiple of 16"):
        session.train(options(data, tmp_path, crop=40), log=QUIET)
    with pytest.raises(SettingError, match="lr_decay=-1.0: must be 0"):
        session.train(options(data, tmp_path, lr_decay=-1.0), log=QUIET)
    with pytest.raises(SettingError, match="grid_weight=-1.0: must be 0"):
        session.train(options(data, tmp_path, grid_weight=-1.0), log=QUIET)
    with pytest.raises(SettingError, match="grid_weight=5.0: relu1_1's decoder does not upsample"):
        session.train(options(data, tmp_path, level=1, grid_weight=5.0), log=QUIET)
    with pytest.raises(SettingError, match="crop=16: must be at least 32 px for the grid term"):
        session.train(options(data, tmp_path, level=4, crop=16), log=QUIET)
    with pytest.raises(SettingError, match="method=gatys: has no network to train"):
        session.train(options(data, tmp_path, method="gatys"), log=QUIET)
    with pytest.raises(SettingError, match="no saved state"):
        session.resume(options(data, tmp_path / "new"), log=QUIET)
    task = tasks.get("wct")
    assert task.grid_weight(options(data, tmp_path, level=1)) == 0.0  # relu1_1 does not upsample
    assert task.grid_weight(options(data, tmp_path, level=3)) == wct_training.GRID_WEIGHT


def test_the_flags_take_their_fields_types():
    """Each flag parses as its TrainOptions field's type, `float | None` included (no string weights)."""
    from absl import flags

    from nst_tf.cli import train as cli

    values = flags.FlagValues()
    cli.define_flags(flag_values=values)
    values(["train", "--grid_weight", "0.5", "--level", "3", "--style_weight", "7"])
    assert values.grid_weight == 0.5 and values.level == 3 and values.style_weight == 7.0
    assert values["init_from"].value is None and isinstance(values.crop, int)


def test_the_command_says_a_missing_manifest_in_one_line_and_exits_2(tmp_path):
    args = [
        "--method",
        "wct",
        "--level",
        "3",
        "--data",
        str(tmp_path / "none.json"),
        "--out",
        str(tmp_path / "o"),
    ]
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf.train", *args], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: --data={tmp_path / 'none.json'}: not a readable manifest")


def test_a_few_steps_lower_the_loss_on_held_out_photos(data, tmp_path):
    from nst_tf.train import tasks
    from nst_tf.train.loop import Trainer

    opts = options(data, tmp_path, level=1, iterations=30, learning_rate=1e-2, batch_size=3)
    tf.keras.utils.set_random_seed(0)
    trainer = Trainer(tasks.get("wct").build(opts, weights.read_weights(data / "tiny.npz"), "float32"), opts)
    photos = session.preview_photos(opts)
    before = float(trainer.task.losses(photos)["total"])
    assert [s.iteration for s in trainer.steps()][-1] == 30
    after = float(trainer.task.losses(photos)["total"])
    assert after < 0.5 * before, (before, after)


def test_a_deeper_decoder_starts_from_a_lower_ones_layers_as_its_tail(data, tmp_path):
    lower = session.train(options(data, tmp_path / "l2", iterations=2), log=QUIET)
    opts = options(data, tmp_path / "l3", level=3, iterations=1, save_every=5, init_from=str(lower))
    tf.keras.utils.set_random_seed(0)
    task = session.tasks.get("wct").build(opts, weights.read_weights(data / "tiny.npz"), "float32")
    record = session.start_from(task, str(lower))
    widths = decoders.widths_of(tiny_layers())
    lower_net = decoders.load_decoder(lower, 2, widths)
    tail = [name for name, *_ in decoders.plan(2, widths)]
    for name in tail:  # dec2_1 ... dec1_1: the lower decoder's weights, exactly
        for got, want in zip(
            task.network.get_layer(name).get_weights(), lower_net.get_layer(name).get_weights()
        ):
            np.testing.assert_array_equal(got, want, err_msg=name)
    fresh = decoders.build_decoder(3, widths)
    assert not np.array_equal(task.network.get_layer("dec3_1").get_weights()[0], fresh.get_weights()[0])
    assert [s["part"] for s in record["stages"]] == ["dec2_1 ... dec1_1"]
    model = session.train(opts, log=QUIET)
    stages = decoders.read_meta(model)["stages"]
    assert [(s["run"], s["steps"], s.get("part")) for s in stages] == [
        ("wct_relu2_1", 2, "dec2_1 ... dec1_1"),
        ("wct_relu3_1", 1, None),
    ]
    from nst_tf.train import ship

    record = json.loads((tmp_path / "l3" / "wct_relu3_1" / session.PROVENANCE_JSON).read_text())
    assert ship.summary(record)["iterations_all_stages"] == 1  # the tail's own steps are not this model's
    with pytest.raises(
        SettingError, match="init_from: .*not the relu2_1 decoder .it is relu3_1.s."
    ):  # a deeper one's
        session.train(options(data, tmp_path / "l2b", iterations=1, init_from=str(model)), log=QUIET)
    with pytest.raises(WeightsError, match="not a decoder of a level below 2"):
        decoders.load_tail(decoders.build_decoder(2, widths), 2, lower, widths)


def test_a_stage_carried_twice_keeps_the_part_it_filled():
    """relu3_1's steps, carried into relu4_1's file and then into relu5_1's, filled dec3_1 ... dec1_1."""
    from nst_tf.nets.decoder_files import carried_stages

    relu4 = {"stages": [{"run": "wct_relu3_1", "part": "dec3_1 ... dec1_1"}, {"run": "wct_relu4_1"}]}
    parts = [s.get("part") for s in carried_stages(relu4, ["dec4_1", "dec3_2", "dec1_1"])]
    assert parts == ["dec3_1 ... dec1_1", "dec4_1 ... dec1_1"]


def test_a_shipped_models_stages_are_carried_by_a_run_started_from_it(data, tmp_path):
    first = session.train(options(data, tmp_path / "a", iterations=2), log=QUIET)
    meta = decoders.read_meta(first)
    shipped = tmp_path / "shipped.npz"  # a shipped file keeps its stages inside its provenance
    net = decoders.load_decoder(first, 2, decoders.widths_of(tiny_layers()))
    decoders.write_decoder(net, shipped, {"level": 2, "provenance": {"stages": meta["stages"]}}, "float16")
    second = session.train(options(data, tmp_path / "b", iterations=1, init_from=str(shipped)), log=QUIET)
    assert [s["steps"] for s in decoders.read_meta(second)["stages"]] == [2, 1]
