"""The controls beyond the assignment: L-BFGS, init, TV, layers, blends, colour, losses, EMA, presets."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from nst_tf import colors, images
from nst_tf.errors import NstError
from nst_tf.methods.gatys.optimize import PRESETS, Config, parse_layers, stylize

RNG = np.random.default_rng(0)
CONTENT = np.asarray(Image.fromarray(RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((80, 60)))
STYLE_A = RNG.integers(0, 256, (50, 50, 3), dtype=np.uint8)
STYLE_B = np.full((40, 40, 3), (200, 40, 90), np.uint8)
SMALL = Config(width=64, height=48, iterations=6, save_every=3)


def final(content, style, weights, config):
    return list(stylize(content, style, weights, config))[-1]


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_same_seed_same_output(tiny, optimizer):
    config = dataclasses.replace(SMALL, optimizer=optimizer, init="random")
    a = final(CONTENT, STYLE_A, tiny, config).image
    b = final(CONTENT, STYLE_A, tiny, config).image
    np.testing.assert_array_equal(a, b)


def test_blend_weights_1_0_equal_the_first_style_alone(tiny):
    alone = final(CONTENT, STYLE_A, tiny, SMALL)
    blended = final(
        CONTENT, [STYLE_A, STYLE_B], tiny, dataclasses.replace(SMALL, style_blend_weights=(1.0, 0.0))
    )
    np.testing.assert_array_equal(alone.image, blended.image)
    assert alone.costs == blended.costs
    half = final(
        CONTENT, [STYLE_A, STYLE_B], tiny, dataclasses.replace(SMALL, style_blend_weights=(0.5, 0.5))
    )
    assert not np.array_equal(alone.image, half.image)
    with pytest.raises(NstError, match="2 weights for 1 style"):
        final(CONTENT, [STYLE_A], tiny, dataclasses.replace(SMALL, style_blend_weights=(0.5, 0.5)))


def test_luminance_only_keeps_the_contents_chroma(tiny):
    config = dataclasses.replace(SMALL, preserve_colors="luminance", learning_rate=8.0)
    out = images.deprocess(final(CONTENT, STYLE_B, tiny, config).image)  # the uint8 image that is saved
    content = images.resize_to(CONTENT, 64, 48)
    chroma_out, chroma_in = colors.rgb_to_ycbcr(out)[..., 1:], colors.rgb_to_ycbcr(content)[..., 1:]
    assert np.abs(chroma_out - chroma_in).mean() < 2.0
    luma_change = np.abs(colors.rgb_to_ycbcr(out)[..., 0] - colors.rgb_to_ycbcr(content)[..., 0]).mean()
    assert luma_change > 2.0  # the luminance was stylised


def test_histogram_matching_moves_the_style_colours_to_the_contents():
    matched = colors.match_color_statistics(
        STYLE_B + RNG.integers(0, 30, STYLE_B.shape, dtype=np.uint8), CONTENT
    )
    got = matched.reshape(-1, 3).astype(float)
    want = CONTENT.reshape(-1, 3).astype(float)
    np.testing.assert_allclose(got.mean(0), want.mean(0), atol=2.0)
    np.testing.assert_allclose(np.cov(got, rowvar=False), np.cov(want, rowvar=False), rtol=0.1, atol=20)


def test_lbfgs_keeps_every_pixel_in_range(tiny):
    config = dataclasses.replace(
        SMALL, optimizer="lbfgs", init="random", beta=1e4, iterations=8, save_every=1
    )
    progress = list(stylize(CONTENT, STYLE_A, tiny, config))
    assert [p.iteration for p in progress] == list(range(8)) and progress[-1].is_last
    totals = [p.costs["total"] for p in progress]
    assert totals[-1] < totals[0]
    for p in progress:
        pixels = p.image + images.MEANS
        assert pixels.min() >= -1e-3 and pixels.max() <= 255 + 1e-3


def test_stopping_lbfgs_early_stops_its_thread(tiny):
    import threading

    before = threading.active_count()
    steps = stylize(CONTENT, STYLE_A, tiny, dataclasses.replace(SMALL, optimizer="lbfgs", iterations=50))
    next(steps)
    steps.close()
    assert threading.active_count() == before


@pytest.mark.parametrize("init", ["noise", "content", "random", "image"])
def test_inits(tiny, tmp_path, init):
    if init == "image":
        Image.fromarray(STYLE_B).save(tmp_path / "start.png")
        init = str(tmp_path / "start.png")
    config = dataclasses.replace(SMALL, iterations=1, learning_rate=1e-6, init=init)
    start = images.deprocess(final(CONTENT, STYLE_A, tiny, config).image).astype(float)
    content = images.resize_to(CONTENT, 64, 48).astype(float)
    if init == "content":
        assert np.abs(start - content).max() <= 1
    elif init.endswith("start.png"):
        assert np.abs(start - np.array([200, 40, 90])).max() <= 1
    else:
        assert np.abs(start - content).mean() > 3


def test_mean_cov_loss_and_tv_and_ema_run_and_lower_the_cost(tiny):
    config = dataclasses.replace(
        SMALL, style_loss="mean_cov", tv_weight=1e-5, ema=0.5, iterations=8, save_every=7
    )  # tv_weight is per the sum at 512 px: 64x that sum's weight at this 64 px long side
    progress = [p for p in stylize(CONTENT, STYLE_A, tiny, config) if p.costs]
    assert progress[-1].costs["style"] < progress[0].costs["style"]
    assert np.isfinite(progress[-1].image).all()


def test_style_scale_and_layer_weights(tiny):
    config = dataclasses.replace(SMALL, style_scale=0.5, content_layers=parse_layers("conv3_1,conv4_2", "x"))
    assert config.content_layers == (("conv3_1", 0.5), ("conv4_2", 0.5))
    assert np.isfinite(final(CONTENT, STYLE_A, tiny, config).costs["total"])


def test_parse_layers():
    assert parse_layers("conv4_2", "content_layers") == (("conv4_2", 1.0),)
    assert parse_layers("conv1_1:0.2, conv2_1:0.8", "style_layers") == (("conv1_1", 0.2), ("conv2_1", 0.8))
    assert parse_layers("conv1_1,conv2_1,conv3_1,conv4_1,conv5_1", "s") == tuple(
        (f"conv{i}_1", 0.2) for i in range(1, 6)
    )
    with pytest.raises(NstError, match="style_layers"):
        parse_layers("conv1_1:heavy", "style_layers")


def test_presets():
    assert PRESETS["assignment"] == Config()
    assert PRESETS["quality"].validate().optimizer == "lbfgs"
    from nst_tf.methods.gatys.method import METHOD
    from nst_tf.methods.gatys.optimize import scale_sizes

    at_512 = dataclasses.replace(PRESETS["quality"], width=512, height=384)  # 500 at 256 px, 150 at 512
    assert scale_sizes(at_512) == [(256, 192), (512, 384)] and METHOD.steps(at_512) == [500, 150]
    assert METHOD.steps(dataclasses.replace(at_512, width=256, height=192)) == [500]


def test_style_fit_keep_keeps_the_style_aspect():
    from nst_tf.methods.base import Settings, prepare_inputs, style_size

    wide = Settings(width=80, height=60)
    assert style_size((100, 50, 3), wide) == (80, 60)  # stretch: the content's shape (the assignment's)
    keep = dataclasses.replace(wide, style_fit="keep", style_scale=0.5)
    assert style_size((100, 50, 3), keep) == (20, 40)  # portrait style: long side 80 x 0.5, aspect kept
    assert style_size((50, 100, 3), keep) == (40, 20)
    portrait = np.zeros((100, 50, 3), np.uint8)
    inputs = prepare_inputs(CONTENT, [portrait], dataclasses.replace(keep, style_scale=1.0))
    assert inputs.styles[0].shape[1:3] == (80, 40)
    with pytest.raises(NstError, match="style_fit"):
        Settings(style_fit="crop").validate()


def test_style_size_fixes_the_styles_long_side_at_every_working_size():
    """--style_size N: the style's long side is N x style_scale px whatever the working size, so the
    statistics matched (and the strokes) are the same at 256, 512 or 1024 px."""
    from nst_tf.methods.base import Settings, style_size

    for width, height in ((64, 48), (256, 192), (1024, 768)):
        fixed = Settings(width=width, height=height, style_size=200, style_fit="keep")
        assert style_size((50, 100, 3), fixed) == (200, 100)  # its own aspect, long side 200
        assert style_size((100, 50, 3), dataclasses.replace(fixed, style_scale=0.5)) == (50, 100)
        assert style_size((100, 50, 3), dataclasses.replace(fixed, style_fit="stretch")) == (200, 150)
    assert style_size((100, 50, 3), Settings(width=64, height=48, style_size=0)) == (64, 48)  # relative
    assert PRESETS["quality"].style_size == 512 and PRESETS["assignment"].style_size == 0
    with pytest.raises(NstError, match="style_size"):
        Settings(style_size=3).validate()


def test_relative_content_loss_is_the_distance_relative_to_the_contents_energy(tiny):
    """content_loss="relative": mean((a_C - a_G)^2) / mean(a_C^2), whatever the activations' scale."""
    import tensorflow as tf

    from nst_tf import costs
    from nst_tf.methods.gatys.losses import content_scale

    a_C = tf.constant(RNG.normal(3, 2, (1, 6, 8, 16)), tf.float32)
    a_G = a_C + tf.constant(RNG.normal(0, 1, (1, 6, 8, 16)), tf.float32)
    relative = dataclasses.replace(SMALL, content_loss="relative")
    want = float(tf.reduce_mean(tf.square(a_C - a_G)) / tf.reduce_mean(tf.square(a_C)))
    for k in (1.0, 10.0):  # 10x the activations: the same relative distance; mse: 100x
        j = float(content_scale(relative, k * a_C) * costs.compute_content_cost(k * a_C, k * a_G))
        assert j == pytest.approx(want, rel=1e-5)
    assert content_scale(SMALL, a_C) == 1.0
    first = final(CONTENT, STYLE_A, tiny, dataclasses.replace(relative, iterations=2, save_every=1))
    assert 0 < first.costs["content"] < 10  # a relative distance, reported as the cost
    with pytest.raises(NstError, match="content_loss"):
        dataclasses.replace(SMALL, content_loss="l1").validate()


def test_tv_term_weighs_the_same_per_pixel_at_every_size():
    """The TV sum of pixel-scale texture grows with the pixel count while the other costs are means:
    tv_cost scales it by (512 / long side)^2, the plain sum at a 512 px long side."""
    import tensorflow as tf

    from nst_tf import costs
    from nst_tf.methods.gatys.losses import tv_cost

    noise = [
        tf.constant(RNG.normal(0, 20, (1, h, w, 3)), tf.float32)
        for w, h in ((256, 192), (512, 384), (1024, 768))
    ]
    plain = [float(costs.total_variation_cost(x)) for x in noise]
    scaled = [float(tv_cost(x)) for x in noise]
    assert plain[2] / plain[0] == pytest.approx(16, rel=0.02)  # the sum: 4x per 2x size
    assert scaled == pytest.approx([scaled[1]] * 3, rel=0.02)  # the term: the same
    assert scaled[1] == pytest.approx(plain[1], rel=1e-6)
