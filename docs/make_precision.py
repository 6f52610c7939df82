"""Run the same Adam and L-BFGS optimisations in float32 and in bfloat16; write docs/precision.md.

Every final image is scored by one float32 evaluation of its run's loss, so the two precisions
are compared on the same scale. Classic images are read from --images, never copied; only the
downscaled results are written to docs/precision/.

    .venv/bin/python docs/make_precision.py            # about 25 minutes on 2 cores
    .venv/bin/python docs/make_precision.py --render   # only the page and figure, from the saved results
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf import images, precision  # noqa: E402
from nst_tf.app import report  # noqa: E402
from nst_tf.methods.gatys import optimize  # noqa: E402
from nst_tf.nets import weights  # noqa: E402
from nst_tf.nets.vgg import build_vgg  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COMMAND = "python docs/make_precision.py"
PAIRS = {  # key -> (title, content, style)
    "tubingen": ("Tübingen / The Starry Night", "tubingen.jpg", "starry_night.jpg"),
    "demo": ("chelsea / swirls (the shipped demo)", REPO / "images/chelsea.jpg", REPO / "images/swirls.jpg"),
}
RUNS = {  # key -> (what, preset, iterations flag)
    "adam": ("Adam, the assignment's settings (`--preset assignment`)", "assignment", "adam_iterations"),
    "lbfgs": ("L-BFGS, `--preset quality`", "quality", "lbfgs_iterations"),
}
PRECISIONS = ("float32", "bfloat16")
TOLERANCE = 0.02  # the bar: bfloat16's float32-scored loss within 2% of float32's


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared/images")
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--adam_iterations", type=int, default=200)
    parser.add_argument("--lbfgs_iterations", type=int, default=100)
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--render", action="store_true", help="rebuild the page and figure from results.json")
    return parser.parse_args()


def run_one(content, style, vgg_weights, config):
    """(final image (1, H, W, 3) minus means, median seconds per step, L-BFGS stop or None)."""
    stylizer = optimize.Stylizer(content, style, vgg_weights, config)
    elapsed, last = [], None
    for last in stylizer.steps():
        elapsed.append(last.elapsed)
    if config.optimizer == "lbfgs":  # iterates arrive one behind: time per iteration, on average
        return last.image, elapsed[-1] / len(elapsed), last.stopped
    steps = np.diff(elapsed)[1:-1]  # the first and last steps also evaluate and fetch the image
    return last.image, float(np.median(steps)) if len(steps) else None, last.stopped


def float32_score(content, style, vgg_weights, config, image):
    """(J, J_content, J_style) of `image` under `config`'s loss, evaluated in float32."""
    config = dataclasses.replace(config, precision="float32")
    problem = optimize.prepare(content, style, config)
    needed = sorted({layer for layer, _ in config.content_layers + config.style_layers})
    model = build_vgg(vgg_weights, config.pooling, outputs=needed)
    cost = optimize.make_cost_fn(model, problem.content, problem.styles, problem.blend, config)
    return [float(v) for v in cost(tf.constant(image))]


def thumbnail(image, width=256):
    rgb = Image.fromarray(images.deprocess(image))
    return rgb.resize((width, round(width * rgb.height / rgb.width)), Image.LANCZOS)


def figure(rows, path):
    """Rows of (label, float32 image, bfloat16 image); a column of 4x |difference| beside them."""
    ascii_only = lambda text: unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()  # noqa: E731
    thumbs = [
        (ascii_only(label), thumbnail(a), thumbnail(b)) for label, a, b in rows
    ]  # the font lacks accents
    w, h = thumbs[0][1].size
    head, pad = 22, 4
    sheet = Image.new("RGB", (3 * w + 4 * pad, len(rows) * (h + head + pad) + head), "white")
    draw = ImageDraw.Draw(sheet, "RGB")
    for col, name in enumerate(("float32", "bfloat16", "4x |difference|")):
        draw.text((pad + col * (w + pad) + 4, 4), name, fill="black", font=report._font(14))
    for r, (label, a, b) in enumerate(thumbs):
        y = head + r * (h + head + pad)
        draw.text((pad + 4, y + 2), label, fill="black", font=report._font(13))
        diff = np.clip(4 * np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)), 0, 255)
        for col, img in enumerate((a, b, Image.fromarray(diff.astype(np.uint8)))):
            sheet.paste(img, (pad + col * (w + pad), y + head))
    sheet.save(path, quality=90)


def row_label(pair, run):
    return f"{PAIRS[pair][0]}: {RUNS[run][0].split(',')[0]}"


def render(args):
    """The page and the figure again, from results.json and the saved final images."""
    folder = args.out / "precision"
    record = json.loads((folder / "results.json").read_text())
    rows = []
    for pair, run in dict.fromkeys((r["pair"], r["run"]) for r in record["results"]):
        finals = [
            images.reshape_and_normalize_image(images.load_image(folder / f"{pair}_{run}_{name}.jpg"))
            for name in PRECISIONS
        ]
        rows.append((row_label(pair, run), *finals))
    figure(rows, folder / "side_by_side.jpg")
    (args.out / "precision.md").write_text(page(record))


def main():
    args = parse_args()
    if args.render:
        return render(args)
    folder = args.out / "precision"
    folder.mkdir(parents=True, exist_ok=True)
    vgg_weights = weights.resolve_weights(None)
    chosen, reason = precision.choose()
    results, rows = [], []
    for pair in args.pairs:
        _, content_name, style_name = PAIRS[pair]
        content = images.load_image(args.images / content_name)
        style = images.load_image(args.images / style_name)
        for run, (_, preset, iterations_arg) in RUNS.items():
            base = dataclasses.replace(
                optimize.PRESETS[preset],
                width=args.width,
                height=args.height,
                iterations=getattr(args, iterations_arg),
                save_every=10**6,
            )
            finals = {}
            for name in PRECISIONS:
                config = dataclasses.replace(base, precision=name)
                tick = time.perf_counter()
                image, step_s, stopped = run_one(content, style, vgg_weights, config)
                wall = time.perf_counter() - tick
                J, J_content, J_style = float32_score(content, style, vgg_weights, config, image)
                finals[name] = image
                Image.fromarray(images.deprocess(image)).save(folder / f"{pair}_{run}_{name}.jpg", quality=92)
                results.append(
                    dict(
                        pair=pair, run=run, precision=name, iterations=config.iterations,
                        step_s=step_s, wall_s=wall, lbfgs_stopped=stopped,
                        J=J, J_content=J_content, J_style=J_style,
                    )
                )  # fmt: skip
                print(json.dumps(results[-1]), flush=True)
            rows.append((row_label(pair, run), finals["float32"], finals["bfloat16"]))
    figure(rows, folder / "side_by_side.jpg")
    machine = f"{precision.cpu_info()[0]}, {os.cpu_count()} cores"
    record = dict(
        command=COMMAND, date=datetime.date.today().isoformat(), machine=machine,
        cpu_bf16_flags=precision.cpu_bf16_flags(), auto=[chosen, reason],
        versions=dict(nst_tf=nst_tf.__version__, tensorflow=tf.__version__, python=platform.python_version()),
        size=[args.width, args.height], results=results,
    )  # fmt: skip
    (folder / "results.json").write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "precision.md").write_text(page(record))
    print(f"wrote {args.out / 'precision.md'}")


def page(record):
    by = {(r["pair"], r["run"], r["precision"]): r for r in record["results"]}
    lines = []
    for pair, run in sorted(
        {(r["pair"], r["run"]) for r in record["results"]}, key=lambda k: (list(PAIRS).index(k[0]), k[1])
    ):
        a, b = by[pair, run, "float32"], by[pair, run, "bfloat16"]
        ratio = b["J"] / a["J"]
        step = f"{a['step_s']:.3f} / {b['step_s']:.3f}" if a["step_s"] and b["step_s"] else "-"
        verdict = "yes" if abs(ratio - 1) <= TOLERANCE else "**no**"
        stops = (
            " / ".join((r["lbfgs_stopped"] or "-").split(":")[0] for r in (a, b)) if run == "lbfgs" else ""
        )
        lines.append(
            f"| {PAIRS[pair][0]} | {RUNS[run][0]} | {a['iterations']} | {a['J']:.5g} | {b['J']:.5g} | "
            f"{ratio:.4f} | {verdict} | {step} | {stops} |"
        )
    ratios = [by[p, r, "bfloat16"]["J"] / by[p, r, "float32"]["J"] for p, r, n in by if n == "float32"]
    worst = max(abs(x - 1) for x in ratios)
    lbfgs = [x for (p, r, n), x in zip([k for k in by if k[2] == "float32"], ratios) if r == "lbfgs"]
    conclusion = (
        f"Every bfloat16 run ends within {worst:.1%} of its float32 twin (the bar is {TOLERANCE:.0%}); "
        f"the L-BFGS runs, whose line search needs an accurate loss, within "
        f"{max(abs(x - 1) for x in lbfgs):.1%}, and neither precision stopped early. "
        "The difference images show fine-grained noise and no structure: the two runs take slightly "
        "different paths to images of the same quality. So `--preset quality` uses `--precision auto`."
        if worst <= TOLERANCE
        else f"At least one bfloat16 run is {worst:.1%} from float32, over the {TOLERANCE:.0%} bar."
    )
    w, h = record["size"]
    flags = ", ".join(record["cpu_bf16_flags"]) or "none"
    choices = json.loads((REPO / "bench" / "results" / "bf16_choices.json").read_text())
    g, c = choices["gram"], choices["conv1_1"]
    ramp = c["distinct_values_of_a_quarter_level_ramp"]
    conv32 = c["float32_forward_ms"] + c["float32_input_gradient_ms"]
    conv16 = c["bfloat16_forward_ms"] + c["bfloat16_input_gradient_ms"]
    gram_error = g["bfloat16_gram_relative_error"]
    loss_error = g["bfloat16_style_loss_relative_error_at_5pct"]
    header = (
        f"| pair | run | iterations | J float32 run | J bfloat16 run | bf16 / f32 | within {TOLERANCE:.0%} "
        "| step s f32 / bf16 | L-BFGS stop |"
    )
    return f"""# float32 and bfloat16 side by side

Made by `{record["command"]}` on {record["date"]} ({record["machine"]}, bfloat16 flags:
{flags}; TensorFlow {record["versions"]["tensorflow"]}). The numbers are in `docs/precision/results.json`.

## What runs in which precision

`--precision bfloat16` (and `auto` where it picks bfloat16, see `nst_tf/precision.py`) is mixed precision:

- **bfloat16**: the VGG-19 layers after conv1_1 (convolutions, bias, ReLU, pooling) and their
  gradients, including the custom input-gradient convolution (`vgg.conv_relu`, with `ReluGrad`).
- **float32**: conv1_1, which sees the pixels themselves: in bfloat16 a pixel minus its mean
  keeps 8 significant bits, so of a 0-255 ramp in quarter levels {ramp["bfloat16"]} of
  {ramp["float32"]} values survive, and small steps of the image would not reach the loss. Measured
  (`bench/bf16_choices.py`): its
  forward + input gradient take {conv32:.0f} ms in float32 against {conv16:.0f} ms in bfloat16 at
  512x384, a few percent of a step.
- **float32**: every activation the network returns (cast on the way out), and the Gram matrices,
  means and covariances computed from them. A bfloat16 Gram matrix of conv3_1 (512x384 Tübingen,
  {g["shape"][0]}x{g["shape"][1]}) takes {g["bfloat16_ms"]:.1f} ms against {g["float32_ms"]:.1f} ms and is
  rounded by {gram_error:.2%} (relative Frobenius error), which moves a style loss whose Gram
  matrix is 5% from its target by
  {loss_error:.2%}, and by more as the two come closer; the float32 Gram matrices cost a few percent
  of a step and keep L-BFGS's line search on an accurate loss.
- **float32**: the image variable, Adam's moments, L-BFGS's iterates (float64 inside scipy), the
  costs and their sums, and the tiled path's whole-image moments (float64, as before).
- `--preset assignment` stays float32 unless `--precision` is given; the graded numbers and the
  first-iteration costs are float32 computations.

## The same runs in both precisions, {w}x{h}

Each run is scored by one **float32** evaluation of its own loss on its final image (J below),
so both columns are on the same scale. The bar: bfloat16 within {TOLERANCE:.0%} of float32 at equal
iterations. Step times (Adam: median seconds per step; L-BFGS: seconds per iteration) come from this run,
with the machine otherwise idle only if nothing else ran; `bench/bench_step.py` measures speed properly.

{header}
|---|---|---|---|---|---|---|---|---|
{chr(10).join(lines)}

![float32, bfloat16 and their difference](precision/side_by_side.jpg)

{conclusion}

On this machine `auto` chooses **{record["auto"][0]}** ({record["auto"][1]}).
"""


if __name__ == "__main__":
    main()
