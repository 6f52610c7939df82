"""Load, resize and save images; the assignment's preprocessing and noise image."""

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from nst_tf.errors import NstError, SettingError
from nst_tf.files import atomic_write

# The assignment's RGB means (VGG's ImageNet means), subtracted from every input.
MEANS = np.array([123.68, 116.779, 103.939], np.float32).reshape((1, 1, 1, 3))
NOISE_RATIO = 0.6
MIN_SIDE = 32
IMAGES_DIRS = (Path("images"), Path(__file__).resolve().parent.parent / "images")  # the shipped images

# The assignment's own image names: not shipped (course material of unknown licence), so say so.
NOT_SHIPPED = {
    name: f"the assignment's {what}, course material of unknown licence, is not shipped"
    for what, names in (("Louvre photo", ("louvre.jpg", "louvre_small.jpg")),
                        ("Monet painting", ("monet.jpg", "monet_800600.jpg")))
    for name in names
}  # fmt: skip


def find_image(value, setting):
    """The path of an image given as `setting` (content, style): as given, else a bare name in images/.

    Raises:
      SettingError: naming `setting`, when there is no such file.
    """
    if not value:
        raise SettingError(setting, "{setting} is required; give an image file (e.g. {setting}=chelsea.jpg)")
    path = Path(value)
    if path.exists() or path.name != value:
        return path
    for folder in IMAGES_DIRS:
        if (folder / value).exists():
            return folder / value
    what = NOT_SHIPPED.get(value)
    todo = "put your copy in images/" if what else "check the name"
    raise SettingError(
        setting,
        f"{what or 'no such file here or in images/'}; {todo}, "
        "or try the shipped pair --content chelsea.jpg --style swirls.jpg",
        value,
    )


def _to_rgb(img):
    """Any PIL mode as 8-bit RGB: palette, alpha (on white), 16-bit, grey, CMYK."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        if img.mode == "F" and a.max() <= 1.0:
            top = 1.0
        img = Image.fromarray(np.clip(a * (255.0 / top), 0, 255).round().astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


def load_image(path):
    """Read an image file as an (H, W, 3) uint8 RGB array, EXIF orientation applied.

    Raises:
      NstError: the file is missing, a directory, not an image, truncated, too
        small (< 32 px) or a decompression bomb; the message says which.
    """
    path = Path(path)
    if path.is_dir():
        raise NstError(f"{path} is a directory; give an image file")
    if not path.is_file():
        raise NstError(f"{path} does not exist; check the path")
    if path.stat().st_size == 0:
        raise NstError(f"{path} is empty (0 bytes); use a real image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # > 89 Mpx: refuse, too
            with Image.open(path) as img:
                img.load()
                rgb = np.asarray(_to_rgb(ImageOps.exif_transpose(img)))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise NstError(f"{path} is too large to open safely ({e}); shrink it first")
    except (OSError, ValueError, SyntaxError) as e:
        raise NstError(f"{path} is not a readable image ({type(e).__name__}: {e}); use a JPEG or PNG")
    if min(rgb.shape[:2]) < MIN_SIDE:
        h, w = rgb.shape[:2]
        raise NstError(f"{path} is {w}x{h} px; images need at least {MIN_SIDE} px a side")
    return rgb


def resize_to(image, width, height):
    """Resize to exactly width x height, centre-cropping to that aspect first (never stretching)."""
    img = Image.fromarray(image)
    if img.size != (width, height):
        img = ImageOps.fit(img, (width, height), Image.Resampling.LANCZOS)
    return np.asarray(img)


def reshape_and_normalize_image(image):
    """The assignment's preprocessing: add the batch axis and subtract MEANS -> (1, H, W, 3)."""
    return (np.asarray(image, np.float32)[np.newaxis] - MEANS).astype(np.float32)


def deprocess(image):
    """Inverse of preprocessing: add MEANS, clip to [0, 255], uint8 (H, W, 3)."""
    return np.clip(np.asarray(image)[0] + MEANS[0], 0, 255).astype(np.uint8)


def generate_noise_image(content_image, noise_ratio=NOISE_RATIO, seed=None):
    """The assignment's start point: uniform(-20, 20) noise blended with the content.

    Args:
      content_image: preprocessed content, (1, H, W, 3).
      noise_ratio: share of noise, 0.6 in the assignment.
      seed: seed for the noise; None draws fresh noise.

    Returns:
      float32 (1, H, W, 3) = noise * noise_ratio + content_image * (1 - noise_ratio).
    """
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-20, 20, content_image.shape).astype(np.float32)
    return (noise * noise_ratio + content_image * (1 - noise_ratio)).astype(np.float32)


def encode_image(image, fmt):
    """The bytes of a (1, H, W, 3) image: "jpg" (JPEG quality 95, the format of the final image) or "png"."""
    buffer = io.BytesIO()
    pixels = Image.fromarray(deprocess(image))
    if fmt.lower() in ("jpg", "jpeg"):
        pixels.save(buffer, "JPEG", quality=95)
    else:
        pixels.save(buffer, "PNG")
    return buffer.getvalue()


def save_image(path, image):
    """The assignment's save_image: deprocess a (1, H, W, 3) image and write it (atomically)."""
    data = encode_image(image, Path(path).suffix.lstrip("."))
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
