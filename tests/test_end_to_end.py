"""With the embedded default weights (fetched with pip, skipped when offline)."""

import dataclasses

import numpy as np
import pytest
from conftest import REPO, SHARED_IMAGES

from nst_tf import images
from nst_tf.app import report
from nst_tf.methods.gatys.optimize import Config, stylize


def test_a_short_run_lowers_the_cost(tmp_path, default_weights):
    content = images.load_image(REPO / "images" / "chelsea.jpg")
    style = images.load_image(REPO / "images" / "swirls.jpg")
    config = Config(width=128, height=96, iterations=12, save_every=4)
    save = report.Report(tmp_path, config.save_every)
    for p in stylize(content, style, default_weights, config):
        save(p)
    rows = report.read_costs(tmp_path / "costs.csv")
    assert [r[0] for r in rows] == [0, 4, 8, 11]
    totals = [r[1] for r in rows]
    assert all(b < a for a, b in zip(totals, totals[1:])), totals
    assert totals[-1] < 0.5 * totals[0]
    assert (tmp_path / "generated_image.jpg").stat().st_size > 1000


@pytest.mark.skipif(not (SHARED_IMAGES / "louvre_small.jpg").exists(), reason="../shared/images not present")
def test_louvre_monet_first_costs_match_the_course(default_weights):
    """The assignment's pair at 400x300: first reported costs near the course log (real .mat:
    5.05035e9 / 7877.67 / 1.26257e8); the quantised Keras-release weights give 4.915e9 / 7861 / 1.229e8."""
    content = images.load_image(SHARED_IMAGES / "louvre_small.jpg")
    style = images.load_image(SHARED_IMAGES / "monet.jpg")
    first = next(stylize(content, style, default_weights, Config(iterations=1)))
    assert first.costs["total"] == pytest.approx(4.9153e9, rel=2e-3)
    assert first.costs["content"] == pytest.approx(7860.6, rel=2e-3)
    assert first.costs["style"] == pytest.approx(1.2288e8, rel=2e-3)
    course = {"total": 5.05035e9, "content": 7877.67, "style": 1.26257e8}
    for key, value in course.items():
        assert first.costs[key] == pytest.approx(value, rel=0.05)


@pytest.mark.skipif(not (SHARED_IMAGES / "tubingen.jpg").exists(), reason="../shared/images not present")
def test_style_cost_falls_on_the_classic_pair(default_weights):
    content = images.load_image(SHARED_IMAGES / "tubingen.jpg")
    style = images.load_image(SHARED_IMAGES / "starry_night.jpg")
    config = dataclasses.replace(Config(), width=96, height=72, iterations=10, save_every=9)
    progress = [p for p in stylize(content, style, default_weights, config) if p.costs]
    assert progress[-1].costs["style"] < 0.5 * progress[0].costs["style"]
    assert np.isfinite(progress[-1].image).all()
