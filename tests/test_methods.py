"""The method seam: one engine for run, batch and Beam; a method registered only here goes through all."""

import dataclasses
import json

import numpy as np
import pytest
from absl.testing import flagsaver
from conftest import cli, tiny_layers, write_matconvnet
from PIL import Image

from nst_tf import images, methods
from nst_tf.app import batch, report, single
from nst_tf.cli import flags as cli_flags
from nst_tf.cli import run as cli_run
from nst_tf.errors import SettingError
from nst_tf.methods import base
from nst_tf.methods.gatys.config import Config

QUIET = {"log": lambda message: None}


class Recolour(base.Method):
    """Test-only: the content with the style's channel means and deviations. Its whole code is here."""

    name = "recolour"
    cost_names = ("distance",)

    def engine(self, settings, vgg_weights):
        return RecolourEngine(settings)

    def group_limit(self, settings):
        return 2


class RecolourEngine:
    def __init__(self, settings):
        self.settings = settings

    def prepare_style(self, style_images):
        pixels = np.concatenate([s.reshape(-1, 3) for s in style_images]).astype(np.float64)
        return pixels.mean(0), pixels.std(0)

    def stages(self, contents, styles, settings=None, first_stage=0):
        settings = settings or self.settings

        def run():
            shown, costs = [], []
            for content, (mean, std) in zip(contents, styles):
                c = images.resize_to(content, settings.width, settings.height).astype(np.float64)
                x = np.clip((c - c.mean((0, 1))) / (c.std((0, 1)) + 1e-6) * std + mean, 0, 255)
                shown.append(images.reshape_and_normalize_image(x))
                costs.append({"distance": float(np.abs(x.mean((0, 1)) - mean).sum())})
            return np.concatenate(shown), costs

        yield base.OneShot(settings, run)


@pytest.fixture(scope="module")
def recolour():
    method = methods.register(Recolour())
    yield method
    methods._REGISTERED.pop(method.name)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny .mat, two contents and a style (PNG)."""
    root = tmp_path_factory.mktemp("inputs")
    write_matconvnet(root / "tiny.mat", tiny_layers())
    rng = np.random.default_rng(3)
    for name, tint in (("c1", (0, 0, 0)), ("c2", (40, 0, 0)), ("s1", (0, 90, 160))):
        coarse = np.clip(rng.integers(0, 160, (6, 8, 3)) + tint, 0, 255).astype(np.uint8)
        Image.fromarray(coarse).resize((60, 45), Image.Resampling.BICUBIC).save(root / f"{name}.png")
    return root


SETTINGS = base.Settings(width=48, height=36)


def style_means(inputs):
    return images.load_image(inputs / "s1.png").reshape(-1, 3).mean(0)


def test_the_test_method_runs_through_run_and_report(recolour, inputs, tmp_path):
    """`nst_tf.run --method recolour` (in process, the flags parsed as the CLI parses them)."""
    out = tmp_path / "out"
    argv = [
        "run",
        "--method",
        "recolour",
        "--content",
        str(inputs / "c1.png"),
        "--style",
        str(inputs / "s1.png"),
    ]
    argv += [
        "--output_dir",
        str(out),
        "--weights",
        str(inputs / "tiny.mat"),
        "--width",
        "48",
        "--height",
        "36",
    ]
    with flagsaver.flagsaver():
        cli_run.FLAGS.unparse_flags()
        cli_run.FLAGS(argv)
        cli_run.main(["run"])
    result = images.load_image(out / report.FINAL_IMAGE)
    assert result.shape == (36, 48, 3)
    assert np.abs(result.reshape(-1, 3).mean(0) - style_means(inputs)).max() < 6  # the style's colours
    record = json.loads((out / report.RUN_JSON).read_text())
    assert record["method"] == "recolour" and record["status"] == "complete"
    assert set(record["config"]) == {f.name for f in dataclasses.fields(base.Settings)}
    header, rows = report.read_costs_table(out / report.COSTS_CSV)
    assert header == ("iteration", "distance") and len(rows) == 1 and rows[0][1] < 6
    assert not (out / report.CHECKPOINT_DIR).exists() and not report.saved_iterations(out)
    assert report.main([str(out)]) == 0 and (out / report.CONTACT_SHEET).is_file()
    with pytest.raises(SettingError, match="a recolour run is one pass"):
        single.resume(out, log=QUIET["log"])


def test_a_setting_of_another_method_is_refused_by_name(recolour):
    with flagsaver.flagsaver():
        cli_run.FLAGS.unparse_flags()
        cli_run.FLAGS(["run", "--method", "recolour", "--iterations", "5"])
        with pytest.raises(SettingError) as error:
            cli_flags.settings_from_flags(recolour)
    assert cli_flags.flag_message(error.value) == (
        "--iterations does not apply to --method recolour; leave it out"
    )


def test_the_test_method_runs_through_batch_and_beam(recolour, inputs, tmp_path):
    pairs = [(str(inputs / c), str(inputs / "s1.png")) for c in ("c1.png", "c2.png")]
    weights = str(inputs / "tiny.mat")
    rows = batch.run_batch(pairs, tmp_path / "local", SETTINGS, weights, fmt="png", method=recolour, **QUIET)
    assert [r["status"] for r in rows] == ["ok", "ok"] and {r["method"] for r in rows} == {"recolour"}
    assert all(json.loads(r["costs"])["distance"] < 6 and r["total"] == "" for r in rows)
    again = batch.run_batch(pairs, tmp_path / "local", SETTINGS, weights, fmt="png", method=recolour, **QUIET)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    grouped = batch.run_batch(
        pairs, tmp_path / "two", SETTINGS, weights, 2, fmt="png", method=recolour, **QUIET
    )
    with pytest.raises(SettingError, match="images_per_batch=3: recolour stylises at most 2"):
        batch.check_options(SETTINGS, 3, False, recolour)
    pytest.importorskip("apache_beam")
    from nst_tf.app import beam

    beamed = beam.run_pipeline(
        pairs, str(tmp_path / "beam"), SETTINGS, weights, "png", method=recolour, **QUIET
    )
    assert [r["status"] for r in beamed] == ["ok", "ok"]
    for local, other in zip(rows, beamed):
        assert open(local["output"], "rb").read() == open(other["output"], "rb").read()
        assert local["settings_hash"] == other["settings_hash"]
    assert grouped[0]["settings_hash"] == rows[0]["settings_hash"]


def test_the_method_is_in_the_settings_hash_and_gatys_keeps_its_old_hashes():
    gatys, other = methods.get("gatys"), Recolour()
    digest = lambda method: batch.settings_hash(Config(), "w", "c", "s", "jpg", method)  # noqa: E731
    assert digest(gatys) != digest(other)
    assert digest(gatys) == batch.settings_hash(Config(), "w", "c", "s", "jpg")  # as before methods


def test_an_unknown_method_is_one_line_naming_the_known_ones(tmp_path, home):
    done = cli(
        "--method", "nosuch", "--content", "chelsea.jpg", "--style", "swirls.jpg", cwd=tmp_path, home=home
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr == "error: --method=nosuch: no such method; known methods: adain, gatys, wct\n"
    assert not (tmp_path / "output").exists()


def test_batch_with_scales_gives_the_images_of_run_with_scales(inputs, tmp_path):
    """Coarse to fine is the engine's: a batch honours --scales as run does, pixel for pixel."""
    config = Config(width=48, height=36, iterations=3, save_every=1, scales=2)
    pair = (str(inputs / "c1.png"), str(inputs / "s1.png"))
    rows = batch.run_batch([pair], tmp_path / "batch", config, inputs / "tiny.mat", fmt="png", **QUIET)
    single.run(pair[0], [pair[1]], tmp_path / "run", config, inputs / "tiny.mat", **QUIET)
    assert list((tmp_path / "run").glob("scale0_*_2.png")), "run should have optimised two scales"
    final = np.asarray(Image.open(tmp_path / "run" / f"{config.iterations - 1}.png"))
    assert np.asarray(Image.open(rows[0]["output"])).tobytes() == final.tobytes()


def test_each_builtin_methods_spec_is_what_its_engine_module_says():
    """The command line checks settings from `methods.spec` (no TensorFlow): the same as the method's."""
    assert set(methods.CONFIGS) == set(methods.BUILTIN)
    for name in methods.BUILTIN:
        spec, method = methods.spec(name), methods.get(name)
        assert spec.name == name and spec.presets == method.presets and spec.Settings is method.Settings
