import numpy as np
import pytest
from conftest import EPS32
from PIL import Image

from nst_tf import images
from nst_tf.errors import NstError

RGB = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)


def save(tmp_path, name, img, **kw):
    path = tmp_path / name
    img.save(path, **kw)
    return path


@pytest.mark.parametrize(
    "name,make",
    [
        ("rgb.png", lambda: Image.fromarray(RGB)),
        ("grey.png", lambda: Image.fromarray(RGB[..., 0])),
        ("palette.png", lambda: Image.fromarray(RGB).convert("P")),
        ("alpha.png", lambda: Image.fromarray(np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)]))),
        ("cmyk.jpg", lambda: Image.fromarray(RGB).convert("CMYK")),
        ("grey16.png", lambda: Image.fromarray(RGB[..., 0].astype(np.uint16) * 257)),
    ],
)
def test_every_mode_loads_as_rgb(tmp_path, name, make):
    out = images.load_image(save(tmp_path, name, make()))
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8
    if name in ("rgb.png", "alpha.png"):
        np.testing.assert_array_equal(out, RGB)
    if name == "grey16.png":
        np.testing.assert_array_equal(out[..., 1], RGB[..., 0])


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((40, 40, 4), np.uint8)  # fully transparent black
    out = images.load_image(save(tmp_path, "clear.png", Image.fromarray(rgba)))
    assert (out == 255).all()


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda p: p, "does not exist"),
        (lambda p: (p.mkdir(), p)[1], "is a directory"),
        (lambda p: (p.write_bytes(b""), p)[1], "empty"),
        (lambda p: (p.write_text("this is not a picture"), p)[1], "not a readable image"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, setup, message):
    path = setup(tmp_path / "photo.jpg")
    with pytest.raises(NstError, match=message):
        images.load_image(path)


def test_truncated_and_tiny_images(tmp_path):
    path = save(tmp_path, "full.jpg", Image.fromarray(RGB), quality=90)
    (tmp_path / "cut.jpg").write_bytes(path.read_bytes()[:300])
    with pytest.raises(NstError, match="cut.jpg"):
        images.load_image(tmp_path / "cut.jpg")
    with pytest.raises(NstError, match="at least 32"):
        images.load_image(save(tmp_path, "tiny.png", Image.fromarray(RGB[:20])))


def test_resize_keeps_aspect_by_cropping():
    wide = np.zeros((100, 400, 3), np.uint8)
    wide[:, 150:250] = 255  # a white centre band
    out = images.resize_to(wide, 40, 30)
    assert out.shape == (30, 40, 3)
    assert out[:, 20].min() > 200 and out[:, 0].max() < 30  # centre kept, not squeezed into a sliver
    same = images.resize_to(RGB, 50, 40)
    np.testing.assert_array_equal(same, RGB)


def test_preprocess_round_trip():
    x = images.reshape_and_normalize_image(RGB)
    assert x.shape == (1, 40, 50, 3) and x.dtype == np.float32
    np.testing.assert_allclose(
        # one float32 subtraction of numbers up to 255: within eps * 255 whatever the result's size
        x[0, 0, 0],
        RGB[0, 0].astype(np.float64) - [123.68, 116.779, 103.939],
        rtol=0,
        atol=2 * 255 * EPS32,
    )
    np.testing.assert_array_equal(images.deprocess(x), RGB)


def test_noise_image_is_the_assignments_blend():
    content = images.reshape_and_normalize_image(RGB)
    a = images.generate_noise_image(content, 0.6, seed=3)
    b = images.generate_noise_image(content, 0.6, seed=3)
    np.testing.assert_array_equal(a, b)
    noise = (a - 0.4 * content) / 0.6
    assert noise.min() >= -20 - 1e-3 and noise.max() <= 20 + 1e-3 and noise.std() > 10
    np.testing.assert_allclose(images.generate_noise_image(content, 0.0, seed=1), content)


def test_save_image_clips_and_leaves_no_temporary(tmp_path):
    x = images.reshape_and_normalize_image(RGB) * 3  # way out of range
    images.save_image(tmp_path / "a.png", x)
    images.save_image(tmp_path / "b.jpg", x)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.jpg"]
    back = np.asarray(Image.open(tmp_path / "a.png"))
    np.testing.assert_array_equal(back, images.deprocess(x))
