"""The command line as a user meets it: subprocesses, exit codes, one-line errors, output files."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import cli
from PIL import Image


def assert_one_line_error(done, *words):
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    "args,words",
    [
        (
            ["--content", "missing.jpg", "--style", "swirls.jpg"],
            ["--content", "missing.jpg", "check the name"],
        ),
        (  # the design card's command: the assignment's images are not shipped; say why and what to do
            ["--content", "louvre.jpg", "--style", "monet.jpg"],
            ["louvre.jpg", "not shipped", "licence", "images/", "--content chelsea.jpg --style swirls.jpg"],
        ),
        (["--style", "swirls.jpg"], ["--content is required"]),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--iterations", "-1"], ["--iterations"]),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--iterations", "many"], ["--iterations"]),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--pooling", "median"], ["--pooling"]),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--width", "0"], ["--width"]),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--bogus", "1"], ["bogus"]),
    ],
)
def test_bad_input_is_one_line(tmp_path, home, args, words):
    assert_one_line_error(cli(*args, "--output_dir", str(tmp_path / "out"), cwd=tmp_path, home=home), *words)
    assert not (tmp_path / "out" / "generated_image.jpg").exists()


NO_TENSORFLOW = (  # nst_tf.run's command line with `import tensorflow` failing
    "import runpy, sys; sys.modules['tensorflow'] = None; sys.argv[0] = 'nst_tf.run'; "
    "runpy.run_module('nst_tf.run', run_name='__main__')"
)


@pytest.mark.parametrize(
    "args,word",
    [
        (["--content", "missing.jpg", "--style", "swirls.jpg"], "missing.jpg"),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--iterations", "-1"], "--iterations"),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--method", "nope"], "--method"),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--method=wct", "--strength=2"], "--strength"),
        (["--content", "chelsea.jpg", "--style", "swirls.jpg", "--preset", "fancy"], "--preset"),
    ],
)
def test_bad_input_is_answered_before_tensorflow_is_imported(tmp_path, home, args, word):
    """Flags, files and settings are checked first: a mistake costs a fraction of a second."""
    env = {**os.environ, "NST_TF_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, *args], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert_one_line_error(done, word)


def test_bad_files_are_one_line(tmp_path, home):
    (tmp_path / "fake.jpg").write_text("not an image")
    assert_one_line_error(
        cli("--content", "fake.jpg", "--style", "swirls.jpg", cwd=tmp_path, home=home), "fake.jpg"
    )
    import scipy.io

    scipy.io.savemat(tmp_path / "notvgg.mat", {"layers": np.zeros((1, 2))})
    done = cli(
        "--content",
        "chelsea.jpg",
        "--style",
        "swirls.jpg",
        "--weights",
        "notvgg.mat",
        cwd=tmp_path,
        home=home,
    )
    assert_one_line_error(done, "notvgg.mat", "VGG-19")
    (tmp_path / "taken").write_text("a file where the folder should be")
    done = cli(
        "--content", "chelsea.jpg", "--style", "swirls.jpg", "--output_dir", "taken", cwd=tmp_path, home=home
    )
    assert_one_line_error(done, "--output_dir")


def test_a_run_writes_what_model_nn_wrote(tmp_path, home):
    """Bare names come from images/; <i>.png every save_every, generated_image.jpg, costs.csv."""
    out = tmp_path / "out"
    done = cli(
        "--content",
        "chelsea.jpg",
        "--style",
        "swirls.jpg",
        "--width",
        "64",
        "--height",
        "48",
        "--iterations",
        "5",
        "--save_every",
        "2",
        "--output_dir",
        str(out),
        cwd=tmp_path,
        home=home,
    )
    assert done.returncode == 0, done.stderr
    expected = [
        "0.png",
        "2.png",
        "4.png",
        "contact_sheet.jpg",
        "costs.csv",
        "costs.png",
        "generated_image.jpg",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        expected + ["checkpoint", "progress.gif", "run.json"]
    )
    assert Image.open(out / "generated_image.jpg").size == (64, 48)
    rows = list(csv.reader(open(out / "costs.csv")))
    assert rows[0] == ["iteration", "total", "content", "style"]
    assert [r[0] for r in rows[1:]] == ["0", "2", "4"]
    for row in rows[1:]:  # the CSV holds the numbers that were printed
        assert f"Iteration {row[0]}: total cost = {float(row[1]):.6g}" in done.stdout
    assert "matconvnet" in done.stdout.lower() or "MatConvNet" in done.stdout


def test_run_json_says_what_ran(tmp_path, home):
    out = tmp_path / "out"
    args = ["--content", "chelsea.jpg", "--style", "swirls.jpg", "--width", "48", "--height", "36"]
    done = cli(*args, "--iterations", "3", "--output_dir", str(out), cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["iterations_done"] == 3
    assert record["config"]["width"] == 48 and record["config"]["learning_rate"] == 2.0
    assert record["weights"]["source"] == "matconvnet" and len(record["weights"]["sha256"]) == 64
    assert record["device"] == "CPU" or record["device"].startswith("GPU")
    assert set(record["versions"]) >= {"nst_tf", "tensorflow", "numpy", "python"}
    assert set(record["phases"]) >= {"load_images_s", "load_weights_s", "setup_s", "optimise_s", "save_s"}
    assert record["final_costs"]["iteration"] == 2


def test_lbfgs_that_cannot_improve_still_writes_its_image_and_says_why(tmp_path, home):
    """The start is already optimal (no style term, started from the content): L-BFGS-B stops before
    its first iteration; the run keeps the start as the final image and says why in one line."""
    out = tmp_path / "out"
    args = ["--content", "chelsea.jpg", "--style", "swirls.jpg", "--width", "48", "--height", "36"]
    args += ["--optimizer", "lbfgs", "--init", "content", "--beta", "0", "--iterations", "20"]
    done = cli(*args, "--output_dir", str(out), cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stderr
    assert "L-BFGS-B stopped after 1 of 20 iterations" in done.stdout and "converged" in done.stdout
    assert (out / "generated_image.jpg").is_file()
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["iterations_done"] == 1
    assert "CONVERGENCE" in record["scales"][0]["stopped"]
