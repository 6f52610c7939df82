"""Which number format the VGG-19 convolutions run in: float32, bfloat16, or `auto`.

In bfloat16 (mixed precision) only the network runs in bfloat16: its convolutions, ReLUs,
pooling and their gradients (`vgg.build_vgg(precision="bfloat16")` casts the image on the
way in and every returned activation back to float32 on the way out). The image, the
optimiser's state, the Gram matrices, means and covariances, the costs and their sums stay
float32 (see docs/precision.md for what each choice costs and gains).

`auto` takes bfloat16 only where the hardware runs it natively:

- on a GPU of compute capability 8.0 or more (Ampere and later);
- on a CPU with bfloat16 instructions (`avx512_bf16` or `amx_bf16` in /proc/cpuinfo) whose
  bfloat16 convolutions are measurably faster than its float32 ones. The flags alone do not
  say how much faster: with AMX (`amx_bf16`) 5-10x (measured on Xeons, issue 13), `avx512_bf16` alone 2x
  (AMD EPYC, bench/README.md), and a CPU without either has no bfloat16 arithmetic at all
  (TensorFlow converts to float32 and back; not measured here, no such machine was at hand).
  So a probe times one convolution in both formats once per CPU model, TensorFlow version and
  thread count, and caches the answer in `<weights home>/precision.json`.

Everywhere else `auto` is float32, so a machine without native bfloat16 never gets slower.
"""

import json
import os
import time

import numpy as np

from nst_tf import files
from nst_tf.nets import weights

PRECISIONS = ("auto", "float32", "bfloat16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
MIN_GPU_CAPABILITY = (8, 0)
# bfloat16 is chosen when its probe convolution is at least this much faster: the rest of a
# step (float32 Gram matrices, casts, Adam) does not speed up, so a marginal gain is not one.
MIN_SPEEDUP = 1.3
PROBE_SHAPE = (1, 64, 64, 128)  # 3x3, 128 -> 128 channels: 1.2 GFLOP, a VGG-like layer
CACHE_NAME = "precision.json"


def resolve(precision):
    """ "float32" or "bfloat16" for a requested precision; `auto` as the module docstring says."""
    return describe(precision)[0]


def describe(precision):
    """(precision used, why) for a requested one, e.g. ("bfloat16", "auto: GPU compute capability 9.0")."""
    if precision != "auto":
        return precision, "as asked"
    chosen, reason = choose()
    return chosen, f"auto: {reason}"


def choose():
    """(precision, reason) that `auto` takes on this machine; the reason is one short phrase."""
    import tensorflow as tf  # here: settings and flags use this module without it

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
        if capability and tuple(capability) >= MIN_GPU_CAPABILITY:
            return "bfloat16", f"GPU compute capability {capability[0]}.{capability[1]}"
        return "float32", f"GPU compute capability {capability} < 8.0"
    flags = cpu_bf16_flags()
    if not flags:
        return "float32", "no bfloat16 instructions on this CPU"
    probe = cached_probe(flags)
    chosen = "bfloat16" if probe["speedup"] >= MIN_SPEEDUP else "float32"
    return chosen, f"{'+'.join(flags)}: bfloat16 convolutions {probe['speedup']:.1f}x float32's (probe)"


def cpu_info():
    """(model name, set of flags) from /proc/cpuinfo; ("", set()) where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    except OSError:
        return "", set()
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", ""), set(fields.get("flags", "").split())


def cpu_bf16_flags():
    """The bfloat16 instruction flags this CPU has, from BF16_CPU_FLAGS."""
    return [flag for flag in BF16_CPU_FLAGS if flag in cpu_info()[1]]


def probe_key(flags):
    import tensorflow as tf  # here: settings and flags use this module without it

    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    return f"{cpu_info()[0]}|{'+'.join(flags)}|tensorflow {tf.__version__}|{threads} threads"


def cached_probe(flags):
    """`probe()`'s result for this machine, measured once and kept in `precision.json`."""
    path = weights.default_dir() / CACHE_NAME
    key = probe_key(flags)
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    entry = known.get(key)
    if isinstance(entry, dict) and isinstance(entry.get("speedup"), (int, float)):
        return entry
    entry = probe()
    known[key] = entry
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_text(path, json.dumps(known, indent=1))
    except OSError:
        pass  # a read-only home: probe again next time
    return entry


def probe(repeats=5):
    """Time one 3x3 convolution (and its input gradient's conv) in float32 and in bfloat16.

    Returns:
      {"float32_ms", "bfloat16_ms", "speedup"}: the best of `repeats` timings each, about 1 s in all.
    """
    import tensorflow as tf  # here: settings and flags use this module without it

    rng = np.random.default_rng(0)
    x = rng.standard_normal(PROBE_SHAPE).astype(np.float32)
    k = (rng.standard_normal((3, 3, PROBE_SHAPE[-1], PROBE_SHAPE[-1])) * 0.05).astype(np.float32)
    best = {}
    for dtype in (tf.float32, tf.bfloat16):
        xs, ks = tf.cast(x, dtype), tf.cast(k, dtype)
        conv = tf.function(
            lambda xs=xs, ks=ks: tf.nn.conv2d(tf.nn.relu(tf.nn.conv2d(xs, ks, 1, "SAME")), ks, 1, "SAME")
        )
        conv().numpy()  # trace, pick kernels
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            conv().numpy()
            times.append(time.perf_counter() - tick)
        best[dtype.name] = min(times) * 1e3
    return {
        "float32_ms": best["float32"],
        "bfloat16_ms": best["bfloat16"],
        "speedup": best["float32"] / best["bfloat16"],
    }
