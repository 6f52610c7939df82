"""Start-up cost of reading the MatConvNet `.mat` out of process, on a synthetic file of the real size.

The real `imagenet-vgg-verydeep-19.mat` (534 MB) cannot be downloaded here, so this writes a
MatConvNet-shaped file with VGG-19's real layer sizes, fully connected layers included (they are
most of the bytes), and times, in one run:
  * the old in-process path: `scipy.io.loadmat` + picking the conv layers + the file's SHA-256;
  * the first `read_weights` (child process converts, result validated and cached);
  * every later `read_weights` (SHA-256 of the file, cache checksum, `.npz` load);
  * one Adam step at the demo size (400x300) with these weights, for scale.

Usage: `python bench/weights_startup.py` (about a minute and 2.5 GB of disk in a temporary folder).
Writes bench/results/weights_startup.json.
"""

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.io

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "bench")]
from conftest import _mat_layer  # noqa: E402
from timing import cpuinfo_field, time_steps  # noqa: E402

from nst_tf.nets import untrusted, weights  # noqa: E402
from nst_tf.nets.layers import BLOCKS, CONV_LAYERS  # noqa: E402

RESULTS = REPO / "bench" / "results" / "weights_startup.json"
FULLY_CONNECTED = (("fc6", (7, 7, 512, 4096)), ("fc7", (1, 1, 4096, 4096)), ("fc8", (1, 1, 4096, 1000)))


def write_synthetic(path):
    """A MatConvNet 'current'-export VGG-19 with random weights of the real shapes, fc6-fc8 included."""
    rng = np.random.default_rng(0)
    entries, width = [], 3
    for block, n, out in BLOCKS:
        for conv in range(1, n + 1):
            kernel = rng.normal(0, (2 / (9 * width)) ** 0.5, (3, 3, width, out)).astype(np.float32)
            entries.append(_mat_layer(f"conv{block}_{conv}", "current", kernel, np.zeros(out, np.float32)))
            entries.append(_mat_layer(f"relu{block}_{conv}", "current"))
            width = out
        entries.append(_mat_layer(f"pool{block}", "current"))
    for name, shape in FULLY_CONNECTED:
        kernel = rng.normal(0, 0.01, shape).astype(np.float32)
        entries.append(_mat_layer(name, "current", kernel, np.zeros(shape[-1], np.float32)))
    cell = np.empty((1, len(entries)), dtype=object)
    for i, entry in enumerate(entries):
        cell[0, i] = entry
    scipy.io.savemat(str(path), {"layers": cell, "meta": {"normalization": {"averageImage": np.zeros(3)}}})


def in_process(path):
    """What read_weights did before: loadmat in this process, the conv layers, the SHA-256."""
    layers = untrusted.parse_matconvnet(path, CONV_LAYERS)
    return weights.validate(layers, path), weights.sha256_of(path)


def timed(fn, repeat=3):
    return min(time_steps(fn, 0, repeat))


def adam_step_seconds(vgg_weights):
    from nst_tf.methods.gatys.optimize import Config, Stylizer

    rng = np.random.default_rng(1)
    content = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    style = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    steps = Stylizer(content, style, vgg_weights, Config(iterations=4, save_every=100)).steps()
    next(steps)  # trace and warm up
    start = time.perf_counter()
    for _ in steps:
        pass
    return (time.perf_counter() - start) / 3


def main():
    with tempfile.TemporaryDirectory() as tmp:
        mat, cache = Path(tmp) / weights.MATCONVNET_FILE, Path(tmp) / "cache"
        write_synthetic(mat)
        size = mat.stat().st_size
        old = timed(lambda: in_process(mat))
        start = time.perf_counter()
        first = weights.read_weights(mat, cache_dir=cache)
        convert = time.perf_counter() - start
        cached = timed(lambda: weights.read_weights(mat, cache_dir=cache))
        hash_only = timed(lambda: weights.sha256_of(mat))
        step = adam_step_seconds(first)
    result = {
        "machine": f"{cpuinfo_field('model name') or platform.machine()}, {os.cpu_count()} cores",
        "file_bytes": size,
        "in_process_loadmat_and_sha256_s": round(old, 3),
        "first_read_child_conversion_s": round(convert, 3),
        "later_reads_cached_s": round(cached, 3),
        "sha256_of_the_file_alone_s": round(hash_only, 3),
        "added_first_run_s": round(convert - old, 3),
        "added_later_runs_s": round(cached - old, 3),
        "adam_step_400x300_s": round(step, 3),
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
