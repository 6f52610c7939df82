"""docs/fast.md: the fast methods beside the optimisation on held-out photos and styles (issues 16, 17).

    .venv/bin/python docs/make_fast.py --data MANIFEST [--methods quality wct adain] [--render]

MANIFEST is the training manifest of `python -m nst_tf.data.assemble`; the photos and styles used
are in its held-out split (no decoder saw them). For each of PHOTOS x STYLES at a 512 px long side
this runs each method (`quality`: `--preset quality`, the optimisation; `wct`, `adain`: the fast
methods with the package's decoders, or `--wct_decoder` / `--adain_decoder` folders), times it and
scores it with `nst_tf.app.metrics` (style distance, style moved, content distance); for each fast
method also strength 0 / 0.5 / 1, a two-style blend and a two-region mask on the first pair.
Results are merged into docs/fast/results.json (one entry per method and pair, so a method can be
re-run alone when its decoders change), the images go to docs/fast/<method>/ (git-ignored), and
`--render` (also after measuring) draws docs/fast/grid.jpg and docs/fast/extras.jpg and rewrites
the section of docs/fast.md between the markers. Each page picture's inputs are listed with their
licences under it.
"""

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
OUT = REPO / "docs" / "fast"
DOC = REPO / "docs" / "fast.md"
CELLS = OUT / "cells"  # each output's grid cell (committed; the full-size outputs are not)
CELL = 160  # px, a grid cell's side
SIZE = 512
# Held-out files of the manifest, by the start of their names: photos of a close-up, a street, water
# and a still life; styles with strong colour, shape and texture.
PHOTOS = (
    "photos/palapeli-data_collection_european-honey-bee",
    "photos/opencv-doc_examples_leuvenA",
    "photos/tuxpaint-data_templates_ocean_waves",
    "photos/lomiri-wallpapers-16.04_backgrounds_Picture_1A_by_freespace",
)
STYLES = (
    "styles/ukui-wallpapers_backgrounds_rhythm",
    "styles/lomiri-wallpapers-20.04_backgrounds_Fossa_by_Jasper_Roks",
    "styles/palapeli-data_backgrounds_Eliminator-Funk-2",
    "styles/plasma-workspace-wallpapers_Kay",
)
FAST = ("wct", "adain")
STRENGTHS = (0.0, 0.5, 1.0)
RATIO = 1.5  # the issues' bar: a fast method's distances within 1.5x of the optimisation's
BEGIN, END = "<!-- fast -->", "<!-- /fast -->"


def log(message):
    print(f"[fast.md] {message}", file=sys.stderr, flush=True)


def heldout(manifest, prefixes):
    """The manifest records of the held-out files whose names start with `prefixes`, in that order."""
    records = json.loads(Path(manifest).read_text())["files"]
    found = []
    for prefix in prefixes:
        match = [r for r in records if r["file"].startswith(prefix) and r["split"] == "heldout"]
        if not match:
            raise SystemExit(f"error: --data: {manifest} holds no held-out {prefix}*")
        found.append(match[0])
    return found


def name_of(record):
    return Path(record["file"]).stem.rsplit("_", 1)[0].split("_", 1)[-1]


def pair_key(photo, style):
    """A pair's key in results.json: "<photo's name>__<style's name>"."""
    return f"{name_of(photo)}__{name_of(style)}"


def over_optimisation(scores, peer):
    """(style, content) distances of `scores` over the optimisation's `peer` on the same pair."""
    return scores["style_distance"] / peer["style_distance"], scores["content_distance"] / peer[
        "content_distance"
    ]


def working_size(image, side=SIZE):
    h, w = image.shape[:2]
    return (side, round(side * h / w)) if w >= h else (round(side * w / h), side)


class Runner:
    """Each method's engine, built once, and the judge."""

    def __init__(self, args):
        from nst_tf.app import metrics
        from nst_tf.nets import weights

        self.args = args
        self.vgg_weights = weights.resolve_weights(log=lambda m: None)
        self.judge = metrics.Judge(self.vgg_weights)
        self.engines = {}

    def settings(self, method, size, **changes):
        from nst_tf import precision
        from nst_tf.methods import get
        from nst_tf.methods.gatys.config import PRESETS

        used = precision.resolve("auto")
        width, height = size
        if method == "quality":
            return dataclasses.replace(PRESETS["quality"], width=width, height=height, precision=used)
        folder = getattr(self.args, f"{method}_decoder")
        base = get(method).presets["default"]
        extra = {"decoder": folder} if folder else {}
        if method == "wct":
            extra["wct_levels"] = self.args.wct_levels or levels_in(folder or base.decoder_dir())
        return dataclasses.replace(base, width=width, height=height, precision=used, **extra, **changes)

    def stylise(self, method, content, styles, **changes):
        """(uint8 image, seconds, settings) of one run at the content's working size."""
        from nst_tf import images
        from nst_tf.methods import get
        from nst_tf.methods.gatys import optimize

        settings = self.settings(method, working_size(content), **changes)
        start = time.perf_counter()
        if method == "quality":
            last = list(optimize.stylize(content, styles, self.vgg_weights, settings))[-1]
            return images.deprocess(last.image), time.perf_counter() - start, settings
        if method not in self.engines:
            self.engines[method] = get(method).engine(settings, self.vgg_weights)
        engine = self.engines[method]
        start = time.perf_counter()
        progress = next(next(engine.stages([content], [engine.prepare_style(styles)], settings)).steps())
        return images.deprocess(progress.image), time.perf_counter() - start, settings


def levels_in(folder):
    from nst_tf.nets import decoder as decoders

    have = [lv for lv in decoders.LEVELS if (Path(folder) / decoders.decoder_file(lv)).is_file()]
    return ",".join(str(lv) for lv in reversed(have))


def decoder_record(method, settings):
    """What the page says of the decoders a run used: their files' training records."""
    folder = Path(settings.decoder_dir())
    book = folder / "models.json"
    listed = json.loads(book.read_text())["files"] if book.is_file() else {}
    used = {}
    for path in settings.decoder_paths().values():
        entry = listed.get(path.name, {})
        provenance = entry.get("provenance", {})
        used[path.name] = {
            "folder": str(folder),
            "shipped": bool(entry),
            "iterations_done": provenance.get("iterations_done"),
            "iterations_all_stages": provenance.get("iterations_all_stages"),
            "psnr_db": entry.get("psnr_db"),
            "heldout_losses": entry.get("heldout_losses"),
        }
    return used


def its_text(decoder):
    """A decoder's training steps: its last stage's, and all its stages' where it had several."""
    last, everything = decoder.get("iterations_done"), decoder.get("iterations_all_stages")
    if everything and everything != last:
        return f"{last or 0:,} its in its last stage, {everything:,} in all"
    return f"{last:,} its" if last else "? its"


def save(image, method, key):
    folder = OUT / method
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / f"{key}.jpg", quality=92)
    keep_cell(folder / f"{key}.jpg", method, key)


def keep_cell(path, method, key):
    """The grid's cell of an output, kept (committed, a few kB) so that the grid can be drawn again
    when only some methods are re-run, on a machine without the other methods' full-size images."""
    folder = CELLS / method
    folder.mkdir(parents=True, exist_ok=True)
    thumb(path, CELL).save(folder / f"{key}.jpg", quality=90)


def measure(args):
    from nst_tf import images

    photos = heldout(args.data, PHOTOS[: args.pairs])
    styles = heldout(args.data, STYLES[: max(args.pairs, 2)])  # the extras use two
    root = Path(args.data).parent
    load = lambda record: images.load_image(root / record["file"])  # noqa: E731
    runner = Runner(args)
    results_path = OUT / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"runs": {}}
    results["inputs"] = {"photos": photos, "styles": styles}
    for method in args.methods:
        for photo in photos:
            for style in styles:
                key = pair_key(photo, style)
                content, style_image = load(photo), load(style)
                image, seconds, settings = runner.stylise(method, content, [style_image])
                record = {"seconds": round(seconds, 2), "load": round(os.getloadavg()[0], 1)}
                record.update(runner.judge.scores(image, content, style_image))
                if method != "quality":
                    record["decoders"] = decoder_record(method, settings)
                    record["levels"] = list(settings.levels())
                    record["strength"] = settings.strength
                results["runs"].setdefault(method, {})[key] = record
                save(image, method, key)
                log(f"{method} {key}: {json.dumps({k: record[k] for k in ('seconds', 'style_moved')})}")
                write(results_path, results)
        if method in FAST:
            results.setdefault("extras", {})[method] = extras(runner, method, load(photos[0]), styles, load)
        results.setdefault("machines", {})[method] = machine()  # methods may be measured on other machines
        write(results_path, results)
    return results


def extras(runner, method, content, styles, load):
    """Strength 0 / 0.5 / 1, a 50/50 blend of the first two styles and a left/right mask of them,
    on the first photo: {name: scores}; the images saved beside the pairs'."""
    first, second = load(styles[0]), load(styles[1])
    found = {}
    for strength in STRENGTHS:
        image, seconds, _ = runner.stylise(method, content, [first], strength=strength)
        save(image, method, f"strength{strength:g}")
        found[f"strength{strength:g}"] = {
            "seconds": round(seconds, 2),
            **runner.judge.scores(image, content, first),
        }
    image, seconds, _ = runner.stylise(method, content, [first, second], style_blend_weights=(0.5, 0.5))
    save(image, method, "blend")
    found["blend"] = {"seconds": round(seconds, 2)}
    width, height = working_size(content)
    with tempfile.TemporaryDirectory() as tmp:
        left = np.zeros((height, width), np.uint8)
        left[:, : width // 2] = 255
        Image.fromarray(left).save(Path(tmp) / "left.png")
        Image.fromarray(255 - left).save(Path(tmp) / "right.png")
        masks = f"{Path(tmp) / 'left.png'},{Path(tmp) / 'right.png'}"
        image, seconds, _ = runner.stylise(method, content, [first, second], style_masks=masks)
    save(image, method, "masked")
    found["masked"] = {"seconds": round(seconds, 2)}
    return found


def machine():
    from nst_tf import precision

    used, why = precision.describe("auto")
    return f"{precision.cpu_info()[0]}, {used} ({why})"


def write(path, results):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(path)


# --- the page -------------------------------------------------------------------------------------


def output_of(method, key):
    """The image of this machine's run of `method` on `key`, else its kept cell (a run elsewhere)."""
    path = OUT / method / f"{key}.jpg"
    return path if path.exists() else CELLS / method / f"{key}.jpg"


def thumb(path, side):
    image = Image.open(path).convert("RGB")
    image.thumbnail((side, side))
    cell = Image.new("RGB", (side, side), "white")
    cell.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return cell


def grid(results, methods, side=CELL):
    """docs/fast/grid.jpg: a row per photo (the photo first), per style its methods side by side;
    the styles across the top."""
    inputs, root = results["inputs"], Path(results["data"]).parent
    photos, styles = inputs["photos"], inputs["styles"]
    width = side + len(styles) * (len(methods) * side + 8)
    picture = Image.new("RGB", (width, side * (len(photos) + 1)), "white")
    for j, style in enumerate(styles):
        x = side + j * (len(methods) * side + 8) + (len(methods) - 1) * side // 2
        picture.paste(thumb(root / style["file"], side), (x, 0))
    for i, photo in enumerate(photos):
        y = side * (i + 1)
        picture.paste(thumb(root / photo["file"], side), (0, y))
        for j, style in enumerate(styles):
            key = pair_key(photo, style)
            for k, method in enumerate(methods):
                path = output_of(method, key)
                if path.exists():
                    picture.paste(thumb(path, side), (side + j * (len(methods) * side + 8) + k * side, y))
    picture.save(OUT / "grid.jpg", quality=88)


def extras_strip(methods, side=CELL):
    """docs/fast/extras.jpg: per fast method a row: strength 0, 0.5, 1, the blend, the mask."""
    names = [f"strength{s:g}" for s in STRENGTHS] + ["blend", "masked"]
    rows = [m for m in methods if output_of(m, "blend").exists()]
    if not rows:
        return False
    picture = Image.new("RGB", (side * len(names), side * len(rows)), "white")
    for i, method in enumerate(rows):
        for j, name in enumerate(names):
            path = output_of(method, name)
            if path.exists():
                picture.paste(thumb(path, side), (j * side, i * side))
    picture.save(OUT / "extras.jpg", quality=88)
    return rows


def section(results, methods):
    runs = results["runs"]
    fast = [m for m in methods if m in FAST and m in runs]
    quality = runs.get("quality", {})
    machines = results.get("machines", {})
    lines = [BEGIN, "Measured at a 512 px long side; the machines:", ""]
    lines += [f"- {m}: {machines.get(m, results.get('machine', '?'))}" for m in ["quality", *fast]]
    lines.append("")
    for method in fast:
        any_run = next(iter(runs[method].values()))
        levels = ",".join(map(str, any_run.get("levels", [])))
        decoders = ", ".join(
            f"`{name}` ({'shipped' if d['shipped'] else 'not shipped'}, {its_text(d)}"
            + (f", held-out PSNR {d['psnr_db']['heldout_stored']:.2f} dB" if d.get("psnr_db") else "")
            + ")"
            for name, d in any_run["decoders"].items()
        )
        strength = any_run.get("strength", 1.0)  # runs recorded before the field: the default was 1
        lines.append(f"- {method}: levels {levels}, strength {strength:g}; decoders {decoders}.")
    header = "| photo × style | " + " | ".join(
        f"{m}: style distance / content distance (s)" for m in ["quality", *fast]
    )
    lines += ["", header + " |", "| --- |" + " --- |" * (1 + len(fast))]
    within = {m: 0 for m in fast}
    keys = list(quality) + [k for m in fast for k in runs[m] if k not in quality and "__" in k]
    for key in dict.fromkeys(keys):
        q = quality.get(key)
        cells = [f"{q['style_distance']:.0f} / {q['content_distance']:.3f} ({q['seconds']:.0f})" if q else ""]
        for method in fast:
            r = runs[method].get(key)
            if r is None or q is None:
                cells.append(
                    f"{r['style_distance']:.0f} / {r['content_distance']:.3f} ({r['seconds']:.2f})"
                    if r
                    else ""
                )
                continue
            ratio = over_optimisation(r, q)
            ok = max(ratio) <= RATIO
            within[method] += ok
            cells.append(
                f"{r['style_distance']:.0f} / {r['content_distance']:.3f} ({r['seconds']:.2f}); "
                f"×{ratio[0]:.2f} / ×{ratio[1]:.2f}{' ✓' if ok else ''}"
            )
        lines.append(f"| {key.replace('__', ' × ')} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"×: the fast method's distance over the optimisation's on the same pair; ✓: both within ×{RATIO}. "
        + "; ".join(f"{m}: {within[m]} of {len(quality)} pairs" for m in fast)
        + ".",
        "",
        "![held-out photos × held-out styles: per style, "
        + ", ".join(["quality", *fast])
        + f"]({OUT.name}/grid.jpg)",
    ]
    rows = extras_strip(methods)
    if rows:
        lines += [
            "",
            "First photo, first style: strength 0, 0.5, 1; a 50/50 blend of the first two styles; the first"
            " style on the left half and the second on the right, both at the method's default strength"
            " (rows: " + ", ".join(rows) + "):",
            "",
            f"![strength, blend, mask]({OUT.name}/extras.jpg)",
        ]
    lines += ["", "Inputs (held-out, from `python -m nst_tf.data.assemble`; docs/data.md):", ""]
    for record in results["inputs"]["photos"] + results["inputs"]["styles"]:
        lines.append(
            f"- `{Path(record['file']).name}`: {record['package']} {record.get('version', '')}, "
            f"{record['licence']}, {record.get('copyright', '').strip()}"
        )
    return "\n".join([*lines, END])


def render(args):
    results = json.loads((OUT / "results.json").read_text())
    results["data"] = args.data
    methods = ["quality", *[m for m in FAST if m in results["runs"]]]
    grid(results, methods)
    text = DOC.read_text() if DOC.exists() else PAGE_HEAD
    block = section(results, methods)
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)
    log(f"wrote {DOC}, {OUT / 'grid.jpg'}")


PAGE_HEAD = """# Fast methods: WCT and AdaIN beside the optimisation

Made by `docs/make_fast.py`. Held-out photos and styles (none of them trained any decoder; Kay's
dark version did train AdaIN's, see below), each
pair at 512 px by `--preset quality` (the optimisation) and by each fast method. Distances as
`nst_tf.app.metrics` defines them: style distance S (the channel means and standard deviations at
relu1_1 ... relu4_1, against the style's) and content distance (relu4_1 features, relative to the
content's).
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the training manifest (its held-out split is used)")
    parser.add_argument("--methods", nargs="+", default=["quality", *FAST], choices=["quality", *FAST])
    parser.add_argument("--wct_decoder", help="WCT's decoders folder (default: the package's)")
    parser.add_argument("--wct_levels", help="WCT's levels (default: those its folder has)")
    parser.add_argument("--adain_decoder", help="AdaIN's decoder folder (default: the package's)")
    parser.add_argument("--render", action="store_true", help="only draw the pictures and the page")
    parser.add_argument("--pairs", type=int, default=len(PHOTOS), help="use the first N photos and styles")
    parser.add_argument("--out", type=Path, help="folder of results.json and the pictures (docs/fast)")
    parser.add_argument("--doc", type=Path, help="the page to (re)write (docs/fast.md)")
    args = parser.parse_args()
    global OUT, CELLS, DOC
    OUT, DOC = args.out or OUT, args.doc or DOC  # a smoke run elsewhere writes nothing in docs/
    CELLS = OUT / "cells"
    if not args.render:
        measure(args)
    render(args)


if __name__ == "__main__":
    main()
