"""What each mixed-precision choice of `--precision bfloat16` costs and gains, measured in one run.

1. The Gram matrix of post-ReLU activations (conv3_1 of Tübingen at 512x384: 96x128 positions,
   256 channels): float32 from float32-cast activations (what nst_tf does) against a bfloat16
   matmul; time, relative error of G, and relative error of the style loss sum((G - G_S)^2)
   when the generated Gram is within 5% of the target (late in an optimisation).
2. conv1_1 (3 -> 64 channels at 512x384) in float32 (what nst_tf does) and in bfloat16: time of
   the forward conv and its input gradient, and how many distinct pixel values survive the
   rounding of a 0-255 ramp minus the means.

Usage: `python bench/bf16_choices.py` (about a minute); writes bench/results/bf16_choices.json.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from nst_tf import images, precision  # noqa: E402
from nst_tf.nets import weights  # noqa: E402
from nst_tf.nets.vgg import build_vgg  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from timing import time_steps  # noqa: E402

RESULTS = REPO / "bench" / "results" / "bf16_choices.json"
SHARED = REPO.parent / "shared" / "images"


def best_ms(fn, repeats=7):
    return min(time_steps(fn, 1, repeats)) * 1e3


def gram_choice(vgg_weights):
    content = images.resize_to(images.load_image(SHARED / "tubingen.jpg"), 512, 384)
    model = build_vgg(vgg_weights, "avg", ["conv3_1"])
    a = model(tf.constant(images.reshape_and_normalize_image(content)))["conv3_1"]
    x32 = tf.reshape(a, [-1, a.shape[-1]])
    x16 = tf.cast(x32, tf.bfloat16)
    f32 = tf.function(lambda: tf.matmul(tf.cast(x16, tf.float32), tf.cast(x16, tf.float32), transpose_a=True))
    b16 = tf.function(lambda: tf.matmul(x16, x16, transpose_a=True))
    exact = f32().numpy().astype(np.float64)
    rounded = tf.cast(b16(), tf.float32).numpy().astype(np.float64)
    rng = np.random.default_rng(0)
    target = exact * (1 + 0.05 * rng.standard_normal(exact.shape))  # a target 5% away
    loss = np.sum((exact - target) ** 2)
    return {
        "shape": list(x32.shape),
        "float32_ms": best_ms(lambda: f32().numpy()),
        "bfloat16_ms": best_ms(lambda: b16().numpy()),
        "bfloat16_gram_relative_error": float(np.linalg.norm(rounded - exact) / np.linalg.norm(exact)),
        "bfloat16_style_loss_relative_error_at_5pct": float(
            abs(np.sum((rounded - target) ** 2) - loss) / loss
        ),
    }


def first_conv_choice(vgg_weights):
    kernel, bias = vgg_weights.layers["conv1_1"]
    rng = np.random.default_rng(0)
    x = (rng.uniform(0, 255, (1, 384, 512, 3)) - images.MEANS).astype(np.float32)
    dy = rng.standard_normal((1, 384, 512, 64)).astype(np.float32)
    out = {}
    for dtype in (tf.float32, tf.bfloat16):
        xs, ks, dys = tf.cast(x, dtype), tf.cast(kernel, dtype), tf.cast(dy, dtype)
        forward = tf.function(lambda xs=xs, ks=ks: tf.nn.conv2d(xs, ks, 1, "SAME"))
        backward = tf.function(lambda dys=dys, ks=ks: tf.nn.conv2d_transpose(dys, ks, x.shape, 1, "SAME"))
        out[f"{dtype.name}_forward_ms"] = best_ms(lambda f=forward: f().numpy())
        out[f"{dtype.name}_input_gradient_ms"] = best_ms(lambda f=backward: f().numpy())
    ramp = (np.arange(0, 255, 0.25) - images.MEANS[0, 0, 0, 0]).astype(np.float32)
    out["distinct_values_of_a_quarter_level_ramp"] = {
        "float32": int(len(np.unique(ramp))),
        "bfloat16": int(len(np.unique(tf.cast(tf.cast(ramp, tf.bfloat16), tf.float32).numpy()))),
    }
    return out


def main():
    vgg_weights = weights.resolve_weights(None)
    record = {
        "machine": f"{precision.cpu_info()[0]}, {os.cpu_count()} cores",
        "cpu_bf16_flags": precision.cpu_bf16_flags(),
        "tensorflow": tf.__version__,
        "gram": gram_choice(vgg_weights),
        "conv1_1": first_conv_choice(vgg_weights),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
