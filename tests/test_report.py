import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nst_tf import images
from nst_tf.app import report
from nst_tf.errors import NstError
from nst_tf.methods.gatys.optimize import Progress


def fake_run(folder, iterations=7, save_every=2):
    """Feed a Report what stylize() would yield: costs falling, images changing."""
    save = report.Report(folder, save_every)
    rng = np.random.default_rng(0)
    for i in range(iterations):
        p = Progress(i, iterations, elapsed=0.1 * (i + 1))
        if i % save_every == 0 or i == iterations - 1:
            p.costs = {"total": 1e9 / (i + 1), "content": 1e3 * (i + 1), "style": 1e7 / (i + 1)}
            p.image = images.reshape_and_normalize_image(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
        save(p)
    return folder


def test_report_writes_model_nn_files_and_costs(tmp_path):
    fake_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.png", "2.png", "4.png", "6.png", "costs.csv",
                                                          "generated_image.jpg"]  # fmt: skip
    rows = report.read_costs(tmp_path / "costs.csv")
    assert [r[0] for r in rows] == [0, 2, 4, 6] and rows[1][1] == pytest.approx(1e9 / 3)


def test_summaries_open_and_show_every_saved_image(tmp_path):
    fake_run(tmp_path)
    paths = report.write_summaries(tmp_path)
    assert sorted(p.name for p in paths) == ["contact_sheet.jpg", "costs.png", "progress.gif"]
    sheet = Image.open(tmp_path / "contact_sheet.jpg")
    sheet.load()
    assert sheet.width >= 5 * 40 and sheet.height > 30  # 5 frames (4 checkpoints + final) in a row
    gif = Image.open(tmp_path / "progress.gif")
    assert gif.n_frames == 5
    plot = Image.open(tmp_path / "costs.png")
    plot.load()
    assert plot.size == (640, 400)
    pixels = np.asarray(plot.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 20  # lines, labels: not a blank canvas


def test_report_command_rebuilds_an_interrupted_run(tmp_path):
    fake_run(tmp_path, iterations=20, save_every=5)
    (tmp_path / "generated_image.jpg").unlink()  # interrupted before the end
    done = subprocess.run(
        [sys.executable, "-m", "nst_tf.report", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "progress.gif").n_frames == 4
    assert (tmp_path / "contact_sheet.jpg").exists() and (tmp_path / "costs.png").exists()


def test_report_command_on_a_wrong_folder(tmp_path):
    assert report.main([str(tmp_path / "nope")]) == 2
    assert report.main([str(tmp_path)]) == 2  # empty folder: one clear line
    with pytest.raises(NstError, match="no saved images"):
        report.write_summaries(tmp_path)


def test_output_dir_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NstError, match="is a file"):
        report.prepare_output_dir(tmp_path / "file")
    assert report.prepare_output_dir(tmp_path / "new" / "deep").is_dir()
