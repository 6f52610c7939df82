"""The batch as an Apache Beam pipeline on the DirectRunner: same files, same manifest, resumable."""

import csv

import numpy as np
import pytest
from conftest import tiny_layers, write_matconvnet
from PIL import Image

pytest.importorskip("apache_beam")

from nst_tf.app import batch  # noqa: E402
from nst_tf.app import beam as beam_pipeline
from nst_tf.methods.gatys.optimize import Config  # noqa: E402

CONFIG = Config(width=48, height=36, iterations=3, save_every=1)
QUIET = {"log": lambda message: None}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """(tiny .mat, 2 x 2 pairs plus one with a broken content image)."""
    root = tmp_path_factory.mktemp("inputs")
    write_matconvnet(root / "tiny.mat", tiny_layers())
    rng = np.random.default_rng(5)
    for name in ("c1", "c2", "s1", "s2"):
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((60, 45), Image.Resampling.BICUBIC).save(root / f"{name}.png")
    (root / "broken.png").write_text("not an image")
    contents = [str(root / name) for name in ("c1.png", "c2.png", "broken.png")]
    return root / "tiny.mat", batch.every_pair(contents, [str(root / "s1.png"), str(root / "s2.png")])


def manifest(out):
    with open(out / batch.MANIFEST, newline="") as f:
        return {row["pair"]: row for row in csv.DictReader(f)}


def test_direct_runner_writes_the_local_batch_files_byte_for_byte(pairs, tmp_path):
    weights, todo = pairs
    local = batch.run_batch(todo, tmp_path / "local", CONFIG, str(weights), fmt="png", **QUIET)
    beam = beam_pipeline.run_pipeline(todo, str(tmp_path / "beam"), CONFIG, str(weights), "png", **QUIET)
    assert [r["status"] for r in beam] == [r["status"] for r in local] == ["ok"] * 4 + ["failed"] * 2
    for a, b in zip(local, beam):
        assert a["settings_hash"] == b["settings_hash"] and a["error"] == b["error"]
        assert (a["total"], a["content_cost"], a["style_cost"]) == (
            b["total"],
            b["content_cost"],
            b["style_cost"],
        )
        if a["status"] == "ok":
            assert (tmp_path / "local" / f"{a['pair']}.png").read_bytes() == (
                tmp_path / "beam" / f"{b['pair']}.png"
            ).read_bytes()
    leftovers = [p.name for p in (tmp_path / "beam").rglob("*") if p.is_file() and p.suffix != ".png"]
    assert leftovers == ["manifest.csv"]  # no temporary files, no per-pair rows once the manifest is written


def test_a_rerun_skips_what_is_done_whichever_ran_it(pairs, tmp_path):
    weights, todo = pairs
    out = tmp_path / "out"
    batch.run_batch(todo[:2], out, CONFIG, str(weights), fmt="png", **QUIET)
    first = {name: (out / f"{name}.png").stat().st_mtime_ns for name in ("c1__s1", "c1__s2")}
    rows = beam_pipeline.run_pipeline(todo, str(out), CONFIG, str(weights), "png", **QUIET)
    assert [r["status"] for r in rows] == ["skipped"] * 2 + ["ok"] * 2 + ["failed"] * 2
    assert {name: (out / f"{name}.png").stat().st_mtime_ns for name in first} == first
    rows = batch.run_batch(todo, out, CONFIG, str(weights), fmt="png", **QUIET)
    assert [r["status"] for r in rows] == ["skipped"] * 4 + ["failed"] * 2
    assert list(manifest(out)) == [r["pair"] for r in rows]


def test_write_bytes_renames_onto_the_final_name(tmp_path):
    target = tmp_path / "sub" / "x.png"
    for data in (b"first", b"second"):  # a retried bundle writes the same name again
        beam_pipeline.write_bytes(str(target), data)
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["x.png"]
