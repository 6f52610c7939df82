"""Shipping a trained decoder: float16 and int8 storage, models.json checked on load, the ship command;
and the package's shipped decoders reconstruct the demo photo as well as their record says."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, tiny_layers
from test_train import QUIET, data, options  # noqa: F401  (the training fixture)

from nst_tf import images
from nst_tf.errors import SettingError, WeightsError
from nst_tf.methods.wct.config import DEFAULT_DECODER_DIR
from nst_tf.nets import decoder as decoders
from nst_tf.train import session, ship


@pytest.mark.parametrize("storage, ratio", [("float16", 0.52), ("int8", 0.3)])
def test_stored_kernels_are_smaller_and_close_to_the_float32_ones(tmp_path, storage, ratio):
    widths = {b: 16 * b for b in range(1, 6)}
    model = decoders.build_decoder(3, widths)
    full, small = tmp_path / "full.npz", tmp_path / f"{storage}.npz"
    decoders.write_decoder(model, full, {"level": 3})
    decoders.write_decoder(model, small, {"level": 3}, storage=storage)
    assert small.stat().st_size < ratio * full.stat().st_size
    again = decoders.load_decoder(small, 3, widths)
    assert decoders.read_meta(small)["storage"] == storage
    for a, b in zip(model.weights, again.weights):
        a, b = a.numpy(), b.numpy()
        bound = np.abs(a).max() / 254 + 1e-7 if storage == "int8" else np.abs(a).max() / 1024
        assert np.abs(a - b).max() <= bound


def test_quantise_keeps_each_output_channels_scale():
    kernel = np.random.default_rng(0).normal(0, 1, (3, 3, 4, 5)).astype(np.float32)
    kernel[..., 2] *= 100  # one loud channel must not swamp the others
    q, scale = decoders.quantise(kernel)
    assert q.dtype == np.int8 and scale.shape == (5,)
    np.testing.assert_allclose(q * scale, kernel, atol=float(scale.max()) / 2 + 1e-6)
    assert np.abs(q * scale - kernel)[..., 0].max() <= scale[0] / 2 + 1e-6


@pytest.fixture(scope="module")
def shipped(data, tmp_path_factory):  # noqa: F811
    """A 3-step tiny relu2_1 run, shipped (float16) to a models folder."""
    out = tmp_path_factory.mktemp("run")
    session.train(options(data, out), log=QUIET, show=lambda step: None)
    to = tmp_path_factory.mktemp("models") / "wct"
    entry = ship.ship(out / "wct_relu2_1", to, "float16", weights=str(data / "tiny.npz"), log=QUIET)
    return out, to, entry


def test_ship_records_checksum_storage_psnr_and_provenance(shipped):
    out, to, entry = shipped
    book = json.loads((to / "models.json").read_text())
    assert book["files"]["decoder_relu2_1.npz"] == entry
    assert entry["storage"] == "float16" and entry["bytes"] == (to / "decoder_relu2_1.npz").stat().st_size
    psnr = entry["psnr_db"]
    assert psnr["heldout_photos"] == 1 and abs(psnr["heldout_trained"] - psnr["heldout_stored"]) < 0.5
    assert entry["provenance"]["iterations_done"] == 3 and entry["provenance"]["final_losses"]["total"] > 0
    readme = (to / "README.md").read_text()
    assert f"{entry['sha256']}  decoder_relu2_1.npz" in readme and "| `decoder_relu2_1.npz` |" in readme


def test_a_damaged_or_unlisted_shipped_file_is_refused_on_load(shipped, tmp_path):
    _, to, _ = shipped
    widths = decoders.widths_of(tiny_layers())
    decoders.load_decoder(to / "decoder_relu2_1.npz", 2, widths)  # intact: loads
    copy = tmp_path / "wct"
    copy.mkdir()
    (copy / "models.json").write_text((to / "models.json").read_text())
    damaged = bytearray((to / "decoder_relu2_1.npz").read_bytes())
    damaged[len(damaged) // 2] ^= 1
    (copy / "decoder_relu2_1.npz").write_bytes(bytes(damaged))
    with pytest.raises(WeightsError, match="differs from .*models.json's .*the file is damaged"):
        decoders.load_decoder(copy / "decoder_relu2_1.npz", 2, widths)
    (copy / "decoder_relu1_1.npz").write_bytes(b"x")
    with pytest.raises(WeightsError, match="not listed in"):
        decoders.load_decoder(copy / "decoder_relu1_1.npz", 1, widths)


def test_ship_refuses_a_folder_without_a_run_in_one_line(tmp_path):
    with pytest.raises(SettingError, match="no training run there"):
        ship.read_run(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf.train.ship", "--run", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"error: --run={tmp_path}: no training run there")


def test_the_packages_decoders_reconstruct_the_demo_photo_as_recorded():
    """Every shipped decoder, on images/chelsea.jpg (in no training set), at least its recorded PSNR."""
    record = DEFAULT_DECODER_DIR / "models.json"
    if not record.is_file():
        pytest.skip("no decoder shipped yet")
    from nst_tf import precision
    from nst_tf.methods.wct.method import load_decoder
    from nst_tf.methods.wct.training import DecoderTraining
    from nst_tf.nets import weights

    vgg_weights = weights.resolve_weights(log=QUIET)
    book = json.loads(record.read_text())
    assert book["files"], "models.json lists no file"
    photo = images.load_image(REPO / "images" / "chelsea.jpg")
    for name, entry in book["files"].items():
        level = int(name.split("relu")[1][0])
        task = DecoderTraining(level, vgg_weights, precision.resolve("auto"))
        task.network.set_weights(
            load_decoder(DEFAULT_DECODER_DIR / name, level, vgg_weights, "float32").get_weights()
        )
        got = ship.reconstruction_psnr(task, photo)
        # recorded in the precision `auto` picked there; bfloat16 against float32 moves it < 0.3 dB
        assert got >= entry["psnr_db"]["demo_stored"] - 0.3, (name, got)


def test_the_packages_adain_decoder_stylises_the_demo_pair_as_recorded():
    """The shipped AdaIN decoder on the demo pair (in no training set): its recorded losses."""
    from nst_tf.methods.adain.config import DEFAULT_DECODER_DIR as ADAIN_DIR

    record = ADAIN_DIR / "models.json"
    if not record.is_file():
        pytest.skip("no AdaIN decoder shipped yet")
    from nst_tf import precision
    from nst_tf.methods.adain.training import DecoderTraining
    from nst_tf.methods.wct.method import load_decoder
    from nst_tf.nets import weights

    vgg_weights = weights.resolve_weights(log=QUIET)
    for name, entry in json.loads(record.read_text())["files"].items():
        task = DecoderTraining(
            vgg_weights, precision.resolve("auto"), entry["provenance"]["settings"]["style_weight"]
        )
        task.network.set_weights(
            load_decoder(ADAIN_DIR / name, 4, vgg_weights, "float32", method="adain").get_weights()
        )
        got = task.evaluate([images.load_image(ship.DEMO_PHOTO)], [images.load_image(ship.DEMO_STYLE)])
        want = entry["heldout_losses"]["demo_stored"]
        # recorded in the precision `auto` picked there; bfloat16 against float32 moves them a little
        assert got["style"] <= 1.1 * want["style"] and got["content"] <= 1.1 * want["content"], (got, want)
        assert got["strength0_psnr_db"] >= want["strength0_psnr_db"] - 0.3, (got, want)


def test_the_readme_says_which_run_each_stage_of_a_model_trained_in_stages_belonged_to():
    """AdaIN's decoder started from WCT's relu4_1 one, itself from relu3_1's tail: each earlier
    stage is named with its run (and its layers, for a tail); the model's own stage is not."""
    stage = {"crop": 128, "batch_size": 8, "learning_rate": 1e-4, "precision": "bfloat16", "cpu": "X"}
    stages = [
        {**stage, "run": "wct_relu3_1", "steps": 100, "seconds": 36, "part": "dec3_1 ... dec1_1"},
        {**stage, "run": "wct_relu4_1", "steps": 5845, "seconds": 3600},
        {**stage, "run": "adain", "steps": 4738, "seconds": 7200, "grid_weight": 1000.0},
    ]
    book = {"files": {"adain_decoder.npz": {"provenance": {"stages": stages}}}}
    (line,) = [x for x in ship.stage_lines(book) if x]
    assert "layers dec3_1 ... dec1_1 as the wct_relu3_1 decoder: 100 steps" in line
    assert "then as the wct_relu4_1 decoder: 5,845 steps" in line
    assert "then 4,738 steps" in line and "as the adain" not in line
    assert line.count("grid weight") == 1 and "bfloat16, grid weight 1000 (2.0 h" in line
