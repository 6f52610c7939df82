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
SIZES = (256, 512, 1024)
# Named settings on top of --preset quality (the first is the preset itself).
RUNS = {
    "preset": {},
    **{f"strength{s:g}": {"style_strength": float(s)} for s in (2, 3, 5, 10, 30)},
    **{f"strength{s:g}-f32": {"style_strength": float(s), "precision": "float32"} for s in (3, 10)},
    **{f"strength{s:g}-adam": {"style_strength": float(s), "optimizer": "adam"} for s in (3, 10)},
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
            changes = {"width": width, "height": height, "precision": used, **RUNS[run]}
            config = dataclasses.replace(PRESETS["quality"], **changes)
            image, seconds, last = stylise(content, style, config, vgg_weights)
            key = f"{run}@{args.size}"
            entry["runs"][key] = {
                "settings": RUNS[run],
                "size": [width, height],
                "seconds": round(seconds, 1),
                "iterations": last.iterations,
                "stopped": last.stopped,
                **judge.scores(image, content, style),
            }
            folder = OUT / key
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"golden_gate_{name}.jpg", quality=92)
            print(json.dumps({name: {key: entry["runs"][key]}, "jcjohnson": entry["jcjohnson"]}), flush=True)
            results_path.write_text(json.dumps(results, indent=1) + "\n")
    return results


BEGIN, END = "<!-- golden-gate -->", "<!-- /golden-gate -->"


def section(results, runs):
    """The markdown between the markers: per pair, his numbers and each run's, and how they compare."""
    lines = [
        BEGIN,
        f"Measured on {results['machine']}. Style moved (1 = the style's statistics) and content distance",
        "(0 = the content's features) as `nst_tf.app.metrics` defines them; the bar: his style moved - 0.02",
        "and his content distance + 0.05.",
        "",
        "| pair | jcjohnson: style moved / content distance | "
        + " | ".join(f"ours, {run}: style moved / content distance (time)" for run in runs)
        + " |",
        "| --- | --- | " + " | ".join("---" for _ in runs) + " |",
    ]
    for name, entry in results["pairs"].items():
        his = entry["jcjohnson"]
        cells = []
        for run in runs:
            ours = entry["runs"].get(run)
            if ours is None:
                cells.append("")
                continue
            ok = (
                ours["style_moved"] >= his["style_moved"] - 0.02
                and ours["content_distance"] <= his["content_distance"] + 0.05
            )
            mark = " ✓" if ok else ""
            cells.append(
                f"{ours['style_moved']:.3f} / {ours['content_distance']:.3f} ({ours['seconds']:.0f} s){mark}"
            )
        lines.append(
            f"| {name} | {his['style_moved']:.3f} / {his['content_distance']:.3f} | "
            + " | ".join(cells)
            + " |"
        )
    across = [""]
    across += [
        "| pair | settings | " + " | ".join(f"{s} px" for s in SIZES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in SIZES) + " |",
    ]
    for name, entry in results["pairs"].items():
        for run in sorted({key.split("@")[0] for key in entry["runs"]}):
            found = {s: entry["runs"].get(f"{run}@{s}") for s in SIZES}
            if sum(v is not None for v in found.values()) < 2:
                continue
            cells = [
                f"{v['style_moved']:.3f} / {v['content_distance']:.3f}" if v else "" for v in found.values()
            ]
            across.append(f"| {name} | {run} | " + " | ".join(cells) + " |")
    if len(across) > 3:
        lines += ["", "Across sizes (the same settings at each long side):", *across]
    return "\n".join([*lines, END])


def strips(jcjohnson, runs, height=256):
    """OUT/strips/<pair>.jpg: his output, then ours for each run, side by side (local only: git-ignored)."""
    folder = OUT / "strips"
    folder.mkdir(parents=True, exist_ok=True)
    for name in PAIRS:
        pictures = [
            Image.open(io.BytesIO(read_jcjohnson(jcjohnson, f"examples/outputs/golden_gate_{name}.png")))
        ]
        pictures += [
            Image.open(OUT / run / f"golden_gate_{name}.jpg")
            for run in runs
            if (OUT / run / f"golden_gate_{name}.jpg").exists()
        ]
        pictures = [
            im.convert("RGB").resize((round(im.width * height / im.height), height)) for im in pictures
        ]
        strip = Image.new(
            "RGB", (sum(im.width for im in pictures) + 4 * (len(pictures) - 1), height), "white"
        )
        x = 0
        for im in pictures:
            strip.paste(im, (x, 0))
            x += im.width + 4
        strip.save(folder / f"{name}.jpg", quality=90)


def render(runs, doc=REPO / "docs" / "quality.md", jcjohnson=None):
    if jcjohnson:
        strips(jcjohnson, runs)
    results = json.loads((OUT / "results.json").read_text())
    text = doc.read_text()
    block = section(results, runs)
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jcjohnson", default="/work/.mirror/jcjohnson+neural-style/repo")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--runs", nargs="+", default=["preset"], choices=list(RUNS))
    parser.add_argument(
        "--render", nargs="+", metavar="RUN@SIZE", help="only rewrite docs/quality.md's section"
    )
    args = parser.parse_args()
    if args.render:
        return render(args.render, jcjohnson=args.jcjohnson)
    OUT.mkdir(parents=True, exist_ok=True)
    measure(args)


if __name__ == "__main__":
    main()
