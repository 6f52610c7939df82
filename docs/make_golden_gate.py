"""Ours beside jcjohnson/neural-style's published Golden Gate examples, measured (issue 15).

    .venv/bin/python docs/make_golden_gate.py --jcjohnson PATH [--size 512] [--runs NAME ...]

PATH is a checkout (or a bare git mirror) of jcjohnson/neural-style: its `examples/inputs` are
the six pairs' inputs and `examples/outputs/golden_gate_<style>.png` his published 512 px results.
Those inputs are evaluation images: nothing is tuned or trained on other pairs from that folder.

For each pair and each run (a named setting: `preset` is `--preset quality` as it stands, the
others are listed in RUNS), this stylises the Golden Gate photograph at `--size` px long side,
times it, and scores it and his output with `nst_tf.app.metrics` (style moved, content distance).
Results go to docs/quality/golden_gate/results.json (merged with earlier runs), our images to
docs/quality/golden_gate/<run>/ (git-ignored: derived from paintings some of which are under
copyright); `--render` only rewrites the section of docs/quality.md between the markers.
"""

import argparse
import dataclasses
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "quality" / "golden_gate"
PAIRS = {  # his output's name -> style image in examples/inputs
    "starry": "starry_night.jpg",
    "scream": "the_scream.jpg",
    "matisse": "woman-with-hat-matisse.jpg",
    "escher": "escher_sphere.jpg",
    "kahlo": "frida_kahlo.jpg",
    "seated": "seated-nude.jpg",
}
CONTENT = "golden_gate.jpg"
# Named settings on top of --preset quality (the first is the preset itself).
RUNS = {
    "preset": {},
    **{f"strength{s:g}": {"style_strength": float(s)} for s in (2, 3, 5, 10, 30)},
}


def read_jcjohnson(root, path):
    """Bytes of `path` in a checkout of jcjohnson/neural-style, or in a bare mirror (git show)."""
    root = Path(root)
    if (root / path).is_file():
        return (root / path).read_bytes()
    return subprocess.run(
        ["git", "--git-dir", str(root), "show", f"HEAD:{path}"], capture_output=True, check=True
    ).stdout


def rgb(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def size_for(image, long_side):
    h, w = image.shape[:2]
    return (long_side, round(long_side * h / w)) if w >= h else (round(long_side * w / h), long_side)


def stylise(content, style, config, vgg_weights):
    from nst_tf import images
    from nst_tf.methods.gatys import optimize

    start = time.perf_counter()
    last = list(optimize.stylize(content, style, vgg_weights, config))[-1]
    return images.deprocess(last.image), time.perf_counter() - start, last


def measure(args):
    sys.path.insert(0, str(REPO))
    from nst_tf import precision
    from nst_tf.app import metrics
    from nst_tf.methods.gatys.config import PRESETS
    from nst_tf.nets import weights

    vgg_weights = weights.resolve_weights(log=lambda m: None)
    judge = metrics.Judge(vgg_weights)
    results_path = OUT / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"pairs": {}}
    content = rgb(read_jcjohnson(args.jcjohnson, f"examples/inputs/{CONTENT}"))
    used, why = precision.describe(PRESETS["quality"].precision)
    results["machine"] = f"{precision.cpu_info()[0]}, {used} ({why})"
    for name in args.pairs:
        style = rgb(read_jcjohnson(args.jcjohnson, f"examples/inputs/{PAIRS[name]}"))
        entry = results["pairs"].setdefault(name, {"style": PAIRS[name], "runs": {}})
        if "jcjohnson" not in entry:
            his = rgb(read_jcjohnson(args.jcjohnson, f"examples/outputs/golden_gate_{name}.png"))
            entry["jcjohnson"] = {"size": [his.shape[1], his.shape[0]], **judge.scores(his, content, style)}
        for run in args.runs:
            width, height = size_for(content, args.size)
            config = dataclasses.replace(
                PRESETS["quality"], width=width, height=height, precision=used, **RUNS[run]
            )
            image, seconds, last = stylise(content, style, config, vgg_weights)
            key = f"{run}@{args.size}"
            entry["runs"][key] = {
                "settings": RUNS[run],
                "size": [width, height],
                "seconds": round(seconds, 1),
                "iterations": last.iterations,
                **judge.scores(image, content, style),
            }
            folder = OUT / key
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"golden_gate_{name}.jpg", quality=92)
            print(json.dumps({name: {key: entry["runs"][key]}, "jcjohnson": entry["jcjohnson"]}), flush=True)
            results_path.write_text(json.dumps(results, indent=1) + "\n")
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jcjohnson", default="/work/.mirror/jcjohnson+neural-style/repo")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--runs", nargs="+", default=["preset"], choices=list(RUNS))
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    measure(args)


if __name__ == "__main__":
    main()
