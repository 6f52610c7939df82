"""float32 against bfloat16: the 3x3 convolutions of a style-transfer step and a matmul, in one run.

Groundwork for `--precision` (issue 13): whether bfloat16 pays on this machine depends on its
kernels (AMX on recent Xeons; AVX512-BF16 alone, as on AMD EPYC, gives less), so the ratio is
measured, not assumed from CPU flags. Prints GFLOP/s per op and dtype and the bf16/f32 speed-up.

Usage: `python bench/bf16_convs.py` (about a minute). Writes bench/results/bf16_convs.json.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import cpuinfo_field, time_steps  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "bf16_convs.json"

# (name, input shape, output channels): the table, VGG-19 shapes at 512x384 and batches.
CONVS = (
    ("conv 1x96x128x256->256", (1, 96, 128, 256), 256),
    ("conv 8x64x64x256->256", (8, 64, 64, 256), 256),
    ("conv 1x384x512x64->64", (1, 384, 512, 64), 64),
)


def rate(fn, flops, repeat=5):
    """GFLOP/s of the fastest of `repeat` calls, after one that traces and warms up."""
    return flops / min(time_steps(fn, 1, repeat)) / 1e9


def conv_ops(shape, cout, dtype):
    x = tf.cast(tf.random.normal(shape), dtype)
    k = tf.cast(tf.random.normal([3, 3, shape[-1], cout]), dtype)
    dy = tf.cast(tf.random.normal([*shape[:3], cout]), dtype)
    forward = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
    same = {"strides": [1, 1, 1, 1], "padding": "SAME", "out_backprop": dy}
    input_grad = tf.function(
        lambda: tf.raw_ops.Conv2DBackpropInput(input_sizes=list(shape), filter=k, **same)
    )
    sizes = [3, 3, shape[-1], cout]
    filter_grad = tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=sizes, **same))
    return {"forward": forward, "input gradient": input_grad, "filter gradient": filter_grad}


def main():
    rows = []
    for name, shape, cout in CONVS:
        flops = 2 * shape[0] * shape[1] * shape[2] * shape[3] * cout * 9
        ops = {dtype: conv_ops(shape, cout, dtype) for dtype in (tf.float32, tf.bfloat16)}
        kinds = ["forward"] if "1x384" in name else ["forward", "input gradient", "filter gradient"]
        for kind in kinds:
            f32 = rate(lambda: ops[tf.float32][kind]().numpy(), flops)  # noqa: B023
            bf16 = rate(lambda: ops[tf.bfloat16][kind]().numpy(), flops)  # noqa: B023
            rows.append(
                {"op": f"{name} {kind}", "float32_gflops": round(f32), "bfloat16_gflops": round(bf16)}
            )
    a32 = tf.random.normal([2048, 2048])
    a16 = tf.cast(a32, tf.bfloat16)
    mm32 = tf.function(lambda: tf.matmul(a32, a32))
    mm16 = tf.function(lambda: tf.matmul(a16, a16))
    flops = 2 * 2048**3
    rows.append({"op": "matmul 2048^3", "float32_gflops": round(rate(lambda: mm32().numpy(), flops)),
                 "bfloat16_gflops": round(rate(lambda: mm16().numpy(), flops))})  # fmt: skip
    for row in rows:
        row["speedup"] = round(row["bfloat16_gflops"] / row["float32_gflops"], 2)
        f32, bf16 = row["float32_gflops"], row["bfloat16_gflops"]
        print(f"{row['op']:48s} f32 {f32:6d}  bf16 {bf16:6d}  x{row['speedup']}")
    flags = cpuinfo_field("flags").split()
    result = {
        "machine": f"{cpuinfo_field('model name')}, {os.cpu_count()} cores",
        "cpu_flags": sorted(f for f in flags if "bf16" in f or f.startswith("amx")),
        "tensorflow": tf.__version__,
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
