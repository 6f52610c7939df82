"""Tiled loss and gradient equal the untiled ones; the grid covers the image once and moves."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from nst_tf import images
from nst_tf.app import single
from nst_tf.errors import NstError
from nst_tf.methods.gatys import memory, optimize, tiling
from nst_tf.nets import weights
from nst_tf.nets.vgg import build_vgg

RNG = np.random.default_rng(0)
H, W = 200, 264
CONTENT = images.reshape_and_normalize_image(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8))
STYLE = images.reshape_and_normalize_image(RNG.integers(0, 256, (H, W, 3), dtype=np.uint8))
IMAGE = CONTENT + RNG.normal(0, 10, CONTENT.shape).astype(np.float32)


def untiled(tiny, config):
    needed = sorted({layer for layer, _ in config.content_layers + config.style_layers})
    model = build_vgg(tiny, "avg", outputs=needed)
    cost = optimize.make_cost_fn(model, CONTENT, [STYLE], [1.0], config)
    x = tf.Variable(IMAGE)
    with tf.GradientTape() as tape:
        J, J_content, J_style = cost(x)
    return model, [float(J), float(J_content), float(J_style)], tape.gradient(J, x).numpy()


@pytest.mark.parametrize(
    "loss,content_loss,tolerance",
    [("gram", "mse", 1e-5), ("gram", "relative", 1e-5), ("mean_cov", "mse", 2e-3)],
)
def test_tiled_loss_and_gradient_equal_untiled(tiny, loss, content_loss, tolerance):
    config = optimize.Config(width=W, height=H, style_loss=loss, content_loss=content_loss, tv_weight=1e-3)
    model, want, grad = untiled(tiny, config)
    targets = tiling.style_targets(model, [STYLE], [1.0], config, 48)
    tiled = tiling.TiledCost(model, CONTENT, targets, config, 48)
    offset = (16, 32)
    assert len(tiling.tiles(H, W, 48, tiled.margin, offset)) > 20  # really tiled
    J, J_content, J_style, tiled_grad = tiled(IMAGE, offset)
    np.testing.assert_allclose([J, J_content], want[:2], rtol=1e-5)
    np.testing.assert_allclose(J_style, want[2], rtol=10 * tolerance)  # untiled mean_cov rounds in float32
    assert np.abs(tiled_grad - grad).max() <= tolerance * np.abs(grad).max()
    np.testing.assert_allclose(tiled.costs(IMAGE), [J, J_content, J_style], rtol=1e-5)  # another grid


def test_the_grid_covers_every_pixel_once_and_moves():
    for offset in [(0, 0), (16, 48), (96, 16)]:
        count = np.zeros((H, W), int)
        for (y0, y1, x0, x1), (ty0, ty1, tx0, tx1) in tiling.tiles(H, W, 64, 80, offset):
            count[y0:y1, x0:x1] += 1
            assert ty0 <= y0 and y1 <= ty1 and tx0 <= x0 and x1 <= tx1
            assert ty0 % 16 == 0 and tx0 % 16 == 0
        assert (count == 1).all()
    a = {c for c, _ in tiling.tiles(H, W, 64, 80, (0, 0))}
    b = {c for c, _ in tiling.tiles(H, W, 64, 80, (16, 48))}
    assert a != b
    with pytest.raises(ValueError, match="multiples of 16"):
        tiling.tiles(H, W, 50, 80)


def test_receptive_field():
    assert tiling.receptive_radius("conv1_1") == 1
    assert tiling.receptive_radius("conv5_1") == 77  # VGG-19's receptive field up to conv5_1 is 156 px
    assert tiling.margin_for(["conv1_1", "conv5_1", "conv4_2"]) == 80


def test_stylizer_tiles_when_told_or_when_memory_is_short(tiny):
    content = images.deprocess(CONTENT)
    style = images.deprocess(STYLE)
    base = optimize.Config(width=W, height=H, iterations=3, save_every=1)
    plain = list(optimize.Stylizer(content, style, tiny, base).steps())
    told = optimize.Stylizer(content, style, tiny, dataclasses.replace(base, tile_size=64))
    assert told.tile == 64 and plain and optimize.Stylizer(content, style, tiny, base).tile == 0
    with pytest.raises(NstError, match=r"max_memory=0.05: a 264x200 run needs at least .* GiB here"):
        optimize.Stylizer(content, style, tiny, dataclasses.replace(base, max_memory=0.05))
    tiled = list(told.steps())
    for a, b in zip(plain, tiled):
        np.testing.assert_allclose(a.costs["total"], b.costs["total"], rtol=1e-4)
        assert np.abs(a.image - b.image).max() < 0.05  # Adam's first steps move pixels by ~lr
    with pytest.raises(NstError, match="tile_size"):
        dataclasses.replace(base, tile_size=50).validate()


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_memory_budget_holds_what_the_process_has_and_the_tiles(monkeypatch, precision):
    """tile_core: untiled when the whole step fits beside what is resident, else the largest tile."""
    monkeypatch.setattr(memory, "resident_bytes", lambda: 2**30)
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    config = optimize.Config(width=4096, height=3072, max_memory=8, precision=precision)
    shape, styles = (3072, 4096), [np.zeros((1, 3072, 4096, 3), np.float32)]
    core = memory.tile_core(config, shape, styles, precision)
    fixed = 2**30 + memory.STEP_OVERHEAD + 4096 * 3072 * memory.WHOLE_IMAGE_BYTES_PER_PIXEL

    def peak(core):
        return fixed + (core + 2 * 80) ** 2 * memory.TILE_BYTES_PER_PIXEL[precision]

    assert core % tiling.ALIGN == 0 and peak(core) <= 8 * 2**30 < peak(core + tiling.ALIGN)  # the largest
    small = dataclasses.replace(config, width=1024, height=768)
    fits = 2**30 + memory.STEP_OVERHEAD + 1024 * 768 * memory.BYTES_PER_PIXEL[precision] <= 8 * 2**30
    assert fits and memory.tile_core(small, (768, 1024), [styles[0][:, :768, :1024]], precision) == 0


@pytest.mark.parametrize("preserve_colors", ["none", "luminance", "histogram"])
def test_tiled_lbfgs_and_preserve_colors_do_what_untiled_runs_do(tiny, preserve_colors):
    """L-BFGS on tiled gradients (a new grid offset at every evaluation) with every colour mode.

    The tiled gradient equals the untiled one to float rounding (tests above), but L-BFGS's line
    search amplifies rounding-level differences over iterations, so the paths are compared by
    their loss, not pixel for pixel.
    """
    rng = np.random.default_rng(3)
    content = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    style = np.clip(rng.normal(0, 40, (H, W, 3)) + [200, 120, 40], 0, 255).astype(np.uint8)  # orange
    base = optimize.Config(
        width=W,
        height=H,
        iterations=4,
        save_every=1,
        optimizer="lbfgs",
        init="content",
        preserve_colors=preserve_colors,
        alpha=1.0,
        beta=1e-3,
    )
    plain = list(optimize.Stylizer(content, style, tiny, base).steps())
    tiled_run = optimize.Stylizer(content, style, tiny, dataclasses.replace(base, tile_size=64))
    assert tiled_run.tile == 64
    tiled = list(tiled_run.steps())
    assert len(tiled) == len(plain) == 4
    assert tiled[0].costs["total"] == pytest.approx(plain[0].costs["total"], rel=1e-5)  # same first step
    start, end = plain[0].costs["total"], plain[-1].costs["total"]
    assert end < 0.7 * start  # the runs did something
    assert tiled[-1].costs["total"] == pytest.approx(end, rel=0.1)
    result = images.deprocess(tiled[-1].image)
    assert np.abs(result.astype(float) - content).mean() > 0.3  # pixels moved (luminance: only Y)
    if preserve_colors == "luminance":  # the content's chroma, tiled too
        cbcr = lambda a: np.asarray(Image.fromarray(a).convert("YCbCr"), float)[..., 1:]  # noqa: E731
        assert np.abs(cbcr(result) - cbcr(content)).mean() < 2


def test_scale_sizes():
    sizes = optimize.scale_sizes(optimize.Config(width=2048, height=1536, scales=0))
    assert sizes == [(256, 192), (512, 384), (1024, 768), (2048, 1536)]
    assert optimize.scale_sizes(optimize.Config(width=400, height=300)) == [(400, 300)]
    three = optimize.scale_sizes(optimize.Config(width=1024, height=512, scales=3))
    assert three == [(256, 128), (512, 256), (1024, 512)]


def test_coarse_to_fine_on_the_command_line(tmp_path):
    import json

    from conftest import cli, tiny_layers, write_matconvnet

    write_matconvnet(tmp_path / "imagenet-vgg-verydeep-19.mat", tiny_layers())
    args = [
        "--content",
        "chelsea.jpg",
        "--style",
        "swirls.jpg",
        "--width",
        "96",
        "--height",
        "64",
        "--scales",
        "2",
        "--iterations",
        "3",
        "--save_every",
        "2",
        "--tile_size",
        "32",
        "--output_dir",
        "out",
    ]
    done = cli(*args, cwd=tmp_path, home=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "[scale 1/2, 48x32]" in done.stdout and "[scale 2/2, 96x64]" in done.stdout
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"scale0_48x32_0.png", "scale0_48x32_2.png", "scale0_48x32_costs.csv", "0.png", "2.png"} <= names
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert [s["size"] for s in record["scales"]] == [[48, 32], [96, 64]]
    assert all(s["tile"] == 32 and s["peak_rss_mb"] > 100 for s in record["scales"])


def test_stylize_runs_every_scale_as_the_command_line_does(tiny, tmp_path):
    """Coarse to fine is the library's: `stylize()` with scales=2 gives `run`'s final image."""
    content, style = images.deprocess(CONTENT), images.deprocess(STYLE)
    config = optimize.Config(width=96, height=64, scales=2, iterations=3, save_every=2)
    progress = list(optimize.stylize(content, style, tiny, config))
    assert [p.image.shape[1:3] for p in progress if p.image is not None] == [(32, 48)] * 2 + [(64, 96)] * 2
    Image.fromarray(content).save(tmp_path / "c.png")
    Image.fromarray(style).save(tmp_path / "s.png")
    weights.write_npz(tiny, tmp_path / "weights.npz")
    out = tmp_path / "out"
    single.run(tmp_path / "c.png", [tmp_path / "s.png"], out, config, tmp_path / "weights.npz", log=print)
    saved = np.asarray(Image.open(out / "2.png"))
    np.testing.assert_array_equal(images.deprocess(progress[-1].image), saved)


def test_refine_iterations_set_the_later_scales_iterations(tiny):
    """The first scale takes `iterations`, every later one `refine_iterations`; resume counts the last."""
    from nst_tf.errors import SettingError
    from nst_tf.methods.gatys.method import METHOD

    content, style = images.deprocess(CONTENT), images.deprocess(STYLE)
    config = optimize.Config(width=96, height=64, scales=3, iterations=4, refine_iterations=2, save_every=1)
    assert METHOD.steps(config) == [4, 2, 2]
    done = {}
    for stylizer in optimize.stylizers(content, [style], tiny, config):
        done[stylizer.scale[0]] = [p.iteration for p in stylizer.steps()]
    assert done == {0: [0, 1, 2, 3], 1: [0, 1], 2: [0, 1]}
    METHOD.check_resume(config, 2, 1)
    with pytest.raises(SettingError, match="--refine_iterations N"):
        METHOD.check_resume(config, 2, 2)
    with pytest.raises(SettingError, match="refine_iterations"):
        optimize.Config(refine_iterations=-1).validate()
    assert METHOD.steps(optimize.Config(scales=2)) == [200, 200]  # 0: iterations at every scale
    # refine_size: scales over it take refine_iterations x (long side / refine_size)^2
    grown = dataclasses.replace(
        config, width=1024, height=768, scales=0, refine_iterations=150, refine_size=512
    )
    assert METHOD.steps(grown) == [4, 150, 600]  # 256, 512, 1024 px
    quality = optimize.PRESETS["quality"]
    assert METHOD.steps(quality) == [500, 150] and quality.refine_size == 512
    with pytest.raises(SettingError, match="refine_size"):
        optimize.Config(refine_size=-1).validate()
