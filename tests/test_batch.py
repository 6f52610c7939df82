"""The batch command: every pair, the manifest, resuming, bad images, same images as `nst_tf.run`."""

import csv
import dataclasses
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from absl.testing import flagsaver
from conftest import tiny_layers, write_matconvnet
from PIL import Image

from nst_tf import methods
from nst_tf.app import batch, report, single
from nst_tf.cli import batch as batch_main
from nst_tf.errors import NstError
from nst_tf.methods.gatys.optimize import Config

CONFIG = Config(width=48, height=36, iterations=3, save_every=1)
QUIET = {"log": lambda message: None}


def smooth_image(seed, size=(60, 45)):
    """A random but smooth RGB image (noise upsampled), so that styles differ visibly."""
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny .mat and folders of 2 content and 2 style images (PNG)."""
    root = tmp_path_factory.mktemp("inputs")
    write_matconvnet(root / "tiny.mat", tiny_layers())
    for folder, names in (("contents", ("c1", "c2")), ("styles", ("s1", "s2"))):
        (root / folder).mkdir()
        for k, name in enumerate(names):
            smooth_image(len(folder) * 10 + k).save(root / folder / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def done_batch(inputs, tmp_path_factory):
    """The 2 x 2 batch, one pair at a time, PNG outputs: (output folder, rows)."""
    out = tmp_path_factory.mktemp("batch")
    return out, batch.run_batch(pairs_of(inputs), out, CONFIG, inputs / "tiny.mat", fmt="png", **QUIET)


def pairs_of(root, contents=("c1", "c2"), styles=("s1", "s2")):
    return batch.every_pair(
        [str(root / "contents" / f"{c}.png") for c in contents],
        [str(root / "styles" / f"{s}.png") for s in styles],
    )


def read_manifest(out):
    with open(out / batch.MANIFEST, newline="") as f:
        return {row["pair"]: row for row in csv.DictReader(f)}


def mtimes(out):
    return {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}


def test_every_pair_gets_an_image_and_a_manifest_row(done_batch):
    out, rows = done_batch
    names = ["c1__s1", "c1__s2", "c2__s1", "c2__s2"]
    assert [r["pair"] for r in rows] == names and {r["status"] for r in rows} == {"ok"}
    assert sorted(p.name for p in out.glob("*.png")) == [f"{n}.png" for n in names]
    assert Image.open(out / "c2__s1.png").size == (48, 36)
    assert next(csv.reader(open(out / "manifest.csv"))) == list(batch.MANIFEST_HEADER)
    manifest = read_manifest(out)
    assert list(manifest) == names
    assert all(float(r["total"]) > 0 and len(r["settings_hash"]) == 16 for r in manifest.values())
    assert len({r["settings_hash"] for r in manifest.values()}) == 4  # the inputs are in the hash


def test_images_and_costs_are_those_of_nst_tf_run(inputs, done_batch, tmp_path):
    """Model, style targets and traced step shared by the batch: still the very same pixels and costs."""
    batch_out, _ = done_batch
    manifest = read_manifest(batch_out)
    for content, style in [pairs_of(inputs)[0], pairs_of(inputs)[-1]]:  # the first pair and the last
        out = tmp_path / batch.pair_name(content, style)
        single.run(content, [style], out, CONFIG, inputs / "tiny.mat", **QUIET)
        last = CONFIG.iterations - 1  # <last>.png is the final image, lossless
        assert (out / f"{last}.png").read_bytes() == (batch_out / f"{out.name}.png").read_bytes()
        (iteration, *run_costs) = report.read_costs(out / "costs.csv")[-1]
        row = manifest[out.name]
        assert iteration == last
        assert [float(row[k]) for k in ("total", "content_cost", "style_cost")] == run_costs


def test_several_images_per_batch_match_one_at_a_time(inputs, done_batch, tmp_path):
    _, one = done_batch
    three = batch.run_batch(
        pairs_of(inputs), tmp_path, CONFIG, inputs / "tiny.mat", images_per_batch=3, fmt="png", **QUIET
    )  # groups of 3 and 1
    for a, b in zip(one, three):
        assert b["status"] == "ok"
        # batched convolutions may take other kernels; Adam carries the rounding through its steps
        np.testing.assert_allclose(float(a["total"]), float(b["total"]), rtol=1e-4)
        pixels = [np.asarray(Image.open(row["output"]), np.int16) for row in (a, b)]
        assert np.abs(pixels[0] - pixels[1]).max() <= 1


def test_an_interrupted_batch_resumes_without_redoing_pairs(inputs, tmp_path):
    def stop_after_two(message):
        if message.startswith("[2/4]"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        batch.run_batch(
            pairs_of(inputs), tmp_path, CONFIG, inputs / "tiny.mat", fmt="png", log=stop_after_two
        )
    assert [r["status"] for r in read_manifest(tmp_path).values()] == ["ok", "ok"]
    before = mtimes(tmp_path)
    assert sorted(before) == ["c1__s1.png", "c1__s2.png"]
    time.sleep(0.01)
    rows = batch.run_batch(pairs_of(inputs), tmp_path, CONFIG, inputs / "tiny.mat", fmt="png", **QUIET)
    assert [r["status"] for r in rows] == ["skipped", "skipped", "ok", "ok"]
    after = mtimes(tmp_path)
    assert {name: after[name] for name in before} == before and len(after) == 4
    changed = dataclasses.replace(CONFIG, iterations=4)  # another setting: every pair is redone
    rows = batch.run_batch(pairs_of(inputs), tmp_path, changed, inputs / "tiny.mat", fmt="png", **QUIET)
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert all(mtimes(tmp_path)[name] > after[name] for name in after)


def test_a_bad_image_is_a_failed_row_and_the_batch_goes_on(inputs, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a JPEG")
    pairs = [(str(bad), str(inputs / "styles" / "s1.png")), *pairs_of(inputs, ["c1"], ["s1"])]
    out = tmp_path / "out"
    rows = batch.run_batch(pairs, out, CONFIG, inputs / "tiny.mat", **QUIET)
    assert [r["status"] for r in rows] == ["failed", "ok"]
    assert "broken.jpg" in rows[0]["error"] and "\n" not in rows[0]["error"]
    assert not (out / "broken__s1.jpg").exists() and (out / "c1__s1.jpg").exists()
    rows = batch.run_batch(pairs, out, CONFIG, inputs / "tiny.mat", **QUIET)
    assert [r["status"] for r in rows] == ["failed", "skipped"]  # failed pairs are tried again


def test_init_previous_starts_each_frame_from_the_one_before(inputs, tmp_path):
    """Frame k starts from frame k-1's output file: as `nst_tf.run --init <that file>` would."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(3):
        smooth_image(10 + k).save(frames / f"frame_{k:04d}.png")
    pairs = batch.every_pair(batch.expand(str(frames), "content"), [str(inputs / "styles" / "s1.png")])
    out = tmp_path / "out"
    config = dataclasses.replace(CONFIG, init="content")  # the first frame's start
    jobs = batch.plan_jobs(pairs, out, config, "0" * 64, "png", previous=True)
    assert [job.init_from for job in jobs] == [
        None,
        str(out / "frame_0000__s1.png"),
        str(out / "frame_0001__s1.png"),
    ]
    batch.run_batch(pairs, out, config, inputs / "tiny.mat", previous=True, fmt="png", **QUIET)
    alone = tmp_path / "single"
    from_previous = dataclasses.replace(CONFIG, init=str(out / "frame_0001__s1.png"))
    single.run(pairs[2][0], [pairs[2][1]], alone, from_previous, inputs / "tiny.mat", **QUIET)
    assert (alone / "2.png").read_bytes() == (out / "frame_0002__s1.png").read_bytes()


def test_pairs_csv_names_and_option_checks(inputs, tmp_path):
    (tmp_path / "pairs.csv").write_text(f"content,style\n{inputs}/contents/c2.png,{inputs}/styles/s1.png\n")
    assert batch.read_pairs(tmp_path / "pairs.csv") == [
        (f"{inputs}/contents/c2.png", f"{inputs}/styles/s1.png")
    ]
    (tmp_path / "rel.csv").write_text("content,style\na.png,b.png\n")
    assert batch.read_pairs(tmp_path / "rel.csv") == [(str(tmp_path / "a.png"), str(tmp_path / "b.png"))]
    with pytest.raises(NstError, match="content,style"):
        (tmp_path / "bad.csv").write_text("image\nx.png\n")
        batch.read_pairs(tmp_path / "bad.csv")
    with pytest.raises(NstError, match="both be written as a__s"):
        batch.plan_jobs([("x/a.png", "s.png"), ("y/a.jpg", "s.png")], tmp_path, CONFIG, "0" * 64)
    with pytest.raises(NstError, match="content: .* matches no file"):
        batch.expand(str(tmp_path / "frames_missing_dir_glob_*"), "content")
    with pytest.raises(NstError, match="images_per_batch=2: gatys stylises at most 1"):
        batch.check_options(dataclasses.replace(CONFIG, optimizer="lbfgs"), 2, False)


def batch_cli(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "nst_tf.batch", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ok_rows(out):
    try:
        return [r for r in read_manifest(out).values() if r["status"] == "ok"]
    except FileNotFoundError:
        return []


def test_cli_killed_midway_then_rerun_finishes_the_rest(inputs, tmp_path):
    """SIGKILL after the first pair: the manifest is whole, and the rerun does only what is left."""
    (tmp_path / "contents").mkdir()
    for name in ("c1", "c2"):
        (tmp_path / "contents" / f"{name}.png").write_bytes(
            (inputs / "contents" / f"{name}.png").read_bytes()
        )
    (tmp_path / "contents" / "zz_broken.png").write_text("not an image")
    args = ["--content", "contents", "--style", str(inputs / "styles" / "s1.png"), "--output_dir", "out"]
    args += ["--weights", str(inputs / "tiny.mat"), "--width", "48", "--height", "36", "--iterations", "150"]
    first = batch_cli(*args, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not ok_rows(tmp_path / "out") and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    done = ok_rows(tmp_path / "out")
    assert 1 <= len(done) < 2, "the first run should have been killed midway; make pairs slower"
    before = {r["pair"]: (tmp_path / r["output"]).stat().st_mtime_ns for r in done}
    second = batch_cli(*args, cwd=tmp_path)
    stdout, stderr = second.communicate(timeout=300)
    assert second.returncode == 1, stderr  # a pair failed
    assert "Traceback" not in stderr and "1 failed" in stdout
    rows = read_manifest(tmp_path / "out")
    assert {r["pair"]: r["status"] for r in rows.values() if r["pair"] in before} == dict.fromkeys(
        before, "skipped"
    )
    assert sum(r["status"] in ("ok", "skipped") for r in rows.values()) == 2 and len(rows) == 3
    assert "zz_broken.png" in rows["zz_broken__s1"]["error"]
    assert all((tmp_path / "out" / f"{name}.jpg").stat().st_mtime_ns == t for name, t in before.items())


def test_flags(tmp_path):
    """`--pairs` excludes --content/--style; `--init previous` is taken out of the Config."""
    flags = batch_main.FLAGS
    with flagsaver.flagsaver():
        flags.unparse_flags()
        flags(["batch", "--pairs", "p.csv", "--content", "x"])
        with pytest.raises(NstError, match="pairs replaces --content and --style"):
            batch_main.pairs_from_flags()
        flags.unparse_flags()
        flags(["batch", "--init", "previous", "--first_init", "content", "--iterations", "7"])
        config, previous = batch_main.settings_from_flags(methods.get())
        assert previous and config.init == "content" and config.iterations == 7
    flags.unparse_flags()


@pytest.mark.parametrize(
    "flag", [["--tensorboard_dir", "tb"], ["--resume", "out"], ["--first_init", "content"],
             ["--images_per_batch", "2", "--optimizer", "lbfgs"], ["--method", "nosuch"]],
)  # fmt: skip
def test_a_flag_the_batch_cannot_honour_is_refused_in_one_line(inputs, tmp_path, flag):
    args = ["--content", str(inputs / "contents"), "--style", str(inputs / "styles"), "--output_dir", "out"]
    run = batch_cli(*args, *flag, cwd=tmp_path)
    _, err = run.communicate(timeout=300)
    assert run.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert flag[0] in err
    assert not (tmp_path / "out").exists()


def test_a_bfloat16_batch_gives_nst_tf_runs_bfloat16_images(inputs, done_batch, tmp_path):
    """--precision reaches the batch's shared model: the same pixels as nst_tf.run in bfloat16,
    other pixels than the float32 batch, and another settings hash (float32 manifests keep theirs)."""
    config = dataclasses.replace(CONFIG, precision="bfloat16")
    pair = pairs_of(inputs)[0]
    rows = batch.run_batch([pair], tmp_path / "batch", config, inputs / "tiny.mat", fmt="png", **QUIET)
    out = tmp_path / "run"
    single.run(pair[0], [pair[1]], out, config, inputs / "tiny.mat", **QUIET)
    got = Image.open(rows[0]["output"])
    assert np.asarray(got).tobytes() == np.asarray(Image.open(out / f"{CONFIG.iterations - 1}.png")).tobytes()
    float32_row = read_manifest(done_batch[0])[batch.pair_name(*pair)]
    assert rows[0]["settings_hash"] != float32_row["settings_hash"]
    assert np.asarray(got).tobytes() != np.asarray(Image.open(float32_row["output"])).tobytes()
