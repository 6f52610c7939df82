"""Peak memory of an optimisation per pixel, in float32 and bfloat16, untiled and tiled.

Each measurement is a fresh child process (peak RSS only grows): it loads TensorFlow and the
weights, notes its resident size (the baseline), runs 2 Adam iterations at one size, with one
tile core size (0: untiled), and reports its peak RSS. Least squares then give, per precision:

- untiled: peak - baseline = a + b * pixels            -> b: bytes per pixel of a step
- tiled:   peak - baseline = a + c * pixels + d * tile -> c: the whole-image arrays per image
  pixel (image, Adam's moments, the gradient, content activations), d: bytes per pixel of one
  tile (core plus margins) computed eagerly

`memory.BYTES_PER_PIXEL`, `memory.WHOLE_IMAGE_BYTES_PER_PIXEL` come from these numbers.

Usage: `python bench/memory.py` (about 15 minutes on 2 cores); writes bench/results/memory.json.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "memory.json"
UNTILED = ((512, 384), (768, 576), (1024, 768))
TILED = (((1024, 768), 256), ((1536, 1152), 256), ((1024, 768), 512), ((1536, 1152), 512))


def child(width, height, tile, precision, images):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from nst_tf import images as nst_images
    from nst_tf.methods.gatys import memory, optimize, tiling
    from nst_tf.nets import weights

    vgg_weights = weights.resolve_weights(None)
    content = nst_images.load_image(Path(images) / "tubingen.jpg")
    style = nst_images.load_image(Path(images) / "starry_night.jpg")
    import tensorflow as tf

    tf.constant(1.0).numpy()
    base = memory.resident_bytes()
    config = optimize.Config(
        width=width, height=height, iterations=2, save_every=100, tile_size=tile, precision=precision
    )
    stylizer = optimize.Stylizer(content, style, vgg_weights, config)
    for _ in stylizer.steps():
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    side = None
    if tile:
        margin = tiling.margin_for([layer for layer, _ in config.content_layers + config.style_layers])
        side = min(tile + 2 * margin, max(width, height))
    print(json.dumps(dict(width=width, height=height, tile=tile, tile_side=side, base=base, peak=peak)))


def measure(width, height, tile, precision, images):
    command = [sys.executable, __file__, "--child", str(width), str(height), str(tile), precision]
    out = subprocess.run(command + ["--images", str(images)], capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["precision"] = precision
    print(json.dumps(row), flush=True)
    return row


def fit(rows, tiled):
    y = np.array([r["peak"] - r["base"] for r in rows], float)
    pixels = np.array([r["width"] * r["height"] for r in rows], float)
    columns = [np.ones_like(pixels), pixels]
    if tiled:
        columns.append(np.array([r["tile_side"] ** 2 for r in rows], float))
    coef, *_ = np.linalg.lstsq(np.stack(columns, 1), y, rcond=None)
    return [float(c) for c in coef]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=4, metavar=("W", "H", "TILE", "PRECISION"))
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "images")
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.child:
        w, h, tile, precision = args.child
        return child(int(w), int(h), int(tile), precision, args.images)
    from nst_tf import precision as nst_precision

    record = dict(
        machine=f"{nst_precision.cpu_info()[0]}, {os.cpu_count()} cores",
        python=platform.python_version(),
        rows=[],
        fits={},
    )
    for precision in args.precisions:
        untiled = [measure(w, h, 0, precision, args.images) for w, h in UNTILED]
        tiled = [measure(w, h, t, precision, args.images) for (w, h), t in TILED]
        a, b = fit(untiled, False)
        a2, c, d = fit(tiled, True)
        record["rows"] += untiled + tiled
        record["fits"][precision] = dict(
            untiled_bytes_per_pixel=b,
            untiled_constant_mb=a / 2**20,
            whole_image_bytes_per_pixel=c,
            tile_bytes_per_pixel=d,
            tiled_constant_mb=a2 / 2**20,
            baseline_mb=float(np.median([r["base"] for r in untiled + tiled])) / 2**20,
        )
        print(precision, json.dumps(record["fits"][precision]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
