"""The quality measures: the issue's definitions, checked against numpy on tiny weights."""

import numpy as np
from conftest import tiny_layers

from nst_tf.app import metrics


def test_style_moved_and_content_distance_follow_their_definitions():
    judge = metrics.Judge(tiny_layers())
    rng = np.random.default_rng(0)
    content = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    output = np.clip(content.astype(int) + rng.integers(-40, 40, content.shape), 0, 255).astype(np.uint8)
    same = judge.scores(content, content, style)
    assert abs(same["style_moved"]) < 1e-12 and same["content_distance"] == 0.0

    got = judge.scores(output, content, style)
    f = {name: judge.features(image) for name, image in (("o", output), ("c", content))}
    f["s"] = judge.features(metrics.long_side(style, 512))
    assert f["s"]["conv1_1"].shape[0] == 512 * 512  # the style at a long side of 512 px

    def S(x, s):
        return sum(
            (
                np.sum((f[x][l].mean(0) - f[s][l].mean(0)) ** 2)
                + np.sum((f[x][l].std(0) - f[s][l].std(0)) ** 2)
            )
            / f[x][l].shape[1]
            for l in metrics.STYLE_LAYERS
        )

    np.testing.assert_allclose(got["style_moved"], 1 - S("o", "s") / S("c", "s"), rtol=1e-9)
    a, c = f["o"]["conv4_1"], f["c"]["conv4_1"]
    np.testing.assert_allclose(got["content_distance"], np.mean((a - c) ** 2) / np.mean(c**2), rtol=1e-9)
    assert 0 < got["content_distance"]
