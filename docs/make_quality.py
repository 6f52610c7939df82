"""Measure Adam against L-BFGS and candidates for the `quality` preset; write docs/quality.md."""

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.optimize  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf import costs, images  # noqa: E402
from nst_tf.methods.gatys import optimize  # noqa: E402
from nst_tf.nets import weights  # noqa: E402
from nst_tf.nets.vgg import build_vgg  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
COMMAND = "python docs/make_quality.py"
PAIRS = {  # key -> (title, content, style); classic files are read from --images, never copied
    "tubingen": ("Tübingen / The Starry Night", "tubingen.jpg", "starry_night.jpg"),
    "louvre": ("Louvre / Monet", "louvre_small.jpg", "monet.jpg"),
    "demo": ("chelsea / swirls (the shipped demo)", REPO / "images/chelsea.jpg", REPO / "images/swirls.jpg"),
}
CLASSIC = ("tubingen", "louvre")
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
THUMB_WIDTH = 256
STYLE_LAYERS = tuple(name for name, _ in costs.STYLE_LAYERS)
UNIFORM = tuple(costs.STYLE_LAYERS)
SHALLOW = (("conv1_1", 0.25), ("conv2_1", 0.25), ("conv3_1", 0.2), ("conv4_1", 0.15), ("conv5_1", 0.15))

# --- The candidates for the quality preset: name -> (what it tests, settings changed from the assignment).
# The proposed preset is "quality"; every other L-BFGS candidate changes one thing from it.

QUALITY = dict(optimizer="lbfgs", init="content", alpha=1.0, beta=1.0, style_loss="mean_cov")
CANDIDATES = {
    "assignment": ("the assignment's preset: Adam lr 2 from the noisy content, Gram, alpha 10, beta 40", {}),
    "provisional": (
        "the provisional quality preset: L-BFGS from the content, Gram, alpha 1, beta 1e3, tv 1e-3, "
        "shallow-weighted layers",
        dict(optimizer="lbfgs", init="content", alpha=1.0, beta=1e3, tv_weight=1e-3, style_layers=SHALLOW),
    ),
    "gram": (
        "L-BFGS from the content, Gram, alpha 1, beta 1e-3 (the Gram loss with a workable ratio)",
        dict(optimizer="lbfgs", init="content", alpha=1.0, beta=1e-3),
    ),
    "quality": ("proposed: L-BFGS from the content, mean_cov, alpha 1, beta 1", QUALITY),
    "quality-beta0.3": ("as quality, beta 0.3 (less style)", dict(QUALITY, beta=0.3)),
    "quality-beta3": ("as quality, beta 3 (more style)", dict(QUALITY, beta=3.0)),
    "quality-noise": ("as quality, started from the assignment's noisy content", dict(QUALITY, init="noise")),
    "quality-adam": ("as quality, optimised by Adam (lr 2, 200 steps)", dict(QUALITY, optimizer="adam")),
    "quality-tv": ("as quality, tv_weight 1e-5 (a little smoothing)", dict(QUALITY, tv_weight=1e-5)),
    "quality-shallow": (
        "as quality, the provisional shallow-weighted layers",
        dict(QUALITY, style_layers=SHALLOW),
    ),
}
# what PRESETS["quality"] should be: these settings, in bfloat16 where native (docs/precision.md; the
# candidates above were measured in float32)
PROPOSED_PRESET = optimize.Config(**QUALITY, iterations=200, precision="auto")


# --- Instrumentation: loss, time and gradient evaluations of every iterate, at no extra cost. -------------


@dataclasses.dataclass
class Trace:
    """Iterate k of a run: when it existed (s after the first step began), its loss, evaluations spent."""

    t0: float | None = None
    times: list = dataclasses.field(default_factory=lambda: [0.0])
    losses: list = dataclasses.field(default_factory=list)
    evals: list = dataclasses.field(default_factory=lambda: [0])
    nfev: int = 0
    stopped: str = ""  # why L-BFGS-B stopped, in scipy's words

    def now(self):
        return time.perf_counter() - self.t0


def _traced_train_step(trace, make_train_step):
    """Wrap `optimize.make_train_step`: each Adam step returns the loss of the image before it."""

    def make(*args, **kwargs):
        step = make_train_step(*args, **kwargs)

        def traced():
            if trace.t0 is None:
                trace.t0 = time.perf_counter()
            out = step()
            trace.losses.append(float(out[0]))  # loss of iterate k, computed by step k
            trace.times.append(trace.now())  # iterate k + 1 exists from now
            trace.evals.append(len(trace.losses))
            return out

        return traced

    return make


def _traced_minimize(trace, minimize):
    """Wrap `scipy.optimize.minimize`: count evaluations, record each L-BFGS iterate's loss and time."""

    def traced(fun, x0, *args, callback=None, **kwargs):
        trace.t0 = time.perf_counter()

        def counted(x):
            value = fun(x)
            trace.nfev += 1
            if not trace.losses:
                trace.losses.append(float(value[0]))  # the starting point's loss
            return value

        def observed(intermediate_result):
            trace.times.append(trace.now())
            trace.losses.append(float(intermediate_result.fun))
            trace.evals.append(trace.nfev)
            return callback(intermediate_result)

        result = minimize(counted, x0, *args, callback=observed, **kwargs)
        trace.stopped = str(result.message)
        return result

    return traced


@contextlib.contextmanager
def instrumented(trace):
    """Record `trace` while nst_tf optimises (patches two functions it calls; restored on exit)."""
    saved = optimize.make_train_step, scipy.optimize.minimize
    optimize.make_train_step = _traced_train_step(trace, saved[0])
    scipy.optimize.minimize = _traced_minimize(trace, saved[1])
    try:
        yield trace
    finally:
        optimize.make_train_step, scipy.optimize.minimize = saved


# --- Runs. --------------------------------------------------------------------------------------------


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


@dataclasses.dataclass
class Run:
    """One stylize() run: its settings, trace, final costs and image, and what the machine was doing."""

    config: optimize.Config
    trace: Trace
    costs: dict
    image: np.ndarray
    wall: float
    cpu: float
    load_start: list
    load_end: list

    def summary(self):
        c = self.config
        tv = self.costs["total"] - c.alpha * self.costs["content"] - c.beta * self.costs["style"]
        times, evals = self.trace.times, self.trace.evals
        steady = (times[-1] - times[1]) / max(evals[-1] - evals[1], 1)  # after the first step's tracing
        return {
            "iterations": len(self.trace.times) - 1,
            "evaluations": self.trace.evals[-1],
            "wall_s": round(self.wall, 2),
            "cpu_s": round(self.cpu, 2),
            "load_start": self.load_start,
            "load_end": self.load_end,
            "final": self.costs,
            "stopped": self.trace.stopped,
            "terms": {
                "content": c.alpha * self.costs["content"],
                "style": c.beta * self.costs["style"],
                "tv": tv if c.tv_weight else None,
            },
            "s_per_eval": steady,
            "early": len(times) - 1 < c.iterations,
            "curve": {"time": self.trace.times, "loss": self.trace.losses, "evals": self.trace.evals},
        }


def run(content, style, w, config):
    """Run stylize() to the end under the instrumentation; the costs and image of the last iterate."""
    trace, load_start, cpu, wall = Trace(), loadavg(), time.process_time(), time.perf_counter()
    last = None
    with instrumented(trace):
        for progress in optimize.stylize(content, style, w, config):
            if progress.costs is not None:
                last = progress
    if config.optimizer == "adam":
        trace.losses.append(last.costs["total"])  # the final iterate's loss, reported by stylize
    if trace.t0 is None or len(trace.losses) != len(trace.times):
        raise RuntimeError("nst_tf's optimiser internals changed; update the instrumentation in this script")
    return Run(
        config,
        trace,
        last.costs,
        last.image,
        time.perf_counter() - wall,
        time.process_time() - cpu,
        load_start,
        loadavg(),
    )


def load_pair(key, images_dir):
    """(content, style) uint8 arrays of a pair, or None when its files are missing."""
    _, content, style = PAIRS[key]
    paths = [p if isinstance(p, Path) else images_dir / p for p in (content, style)]
    if not all(p.is_file() for p in paths):
        return None
    return tuple(images.load_image(p) for p in paths)


def log(*parts):
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


# --- Part 1: Adam against L-BFGS on the assignment's loss. ---------------------------------------------


def loss_at(curve, t, axis="time"):
    """Loss of the newest iterate there was at time t, or after t evaluations with axis="evals"."""
    k = int(np.searchsorted(curve[axis], t, side="right")) - 1
    return curve["loss"][max(k, 0)]


def first_below(curve, target):
    """(iteration, evaluations, seconds) of the first iterate with loss <= target, or None."""
    for k, loss in enumerate(curve["loss"]):
        if loss <= target:
            return k, curve["evals"][k], curve["time"][k]
    return None


def compare(key, pair, w, args):
    """Adam (200 its) and L-BFGS (up to 200 its) from the same noisy start, on the assignment's loss."""
    width, height = args.compare_size
    base = dataclasses.replace(
        optimize.PRESETS["assignment"],
        width=width,
        height=height,
        iterations=args.compare_iterations,
        save_every=args.compare_iterations,  # no extra forward passes (only at steps 0 and last)
    )
    result = {}
    for name in ("adam", "lbfgs"):
        log(f"compare {key}: {name}")
        r = run(*pair, w, dataclasses.replace(base, optimizer=name))
        result[name] = r.summary()
        save_png(args.scratch / f"compare_{key}_{name}.png", images.deprocess(r.image))
    result["metrics"] = compare_metrics(result["adam"]["curve"], result["lbfgs"]["curve"])
    return result


def compare_metrics(adam, lbfgs):
    """Losses at equal wall time; what L-BFGS needs to reach Adam's final loss."""
    horizon = adam["time"][-1]
    reach = first_below(lbfgs, adam["loss"][-1])
    return {
        "adam_time": horizon,
        "at_time": [
            {
                "fraction": f,
                "time": f * horizon,
                "adam": loss_at(adam, f * horizon),
                "lbfgs": loss_at(lbfgs, f * horizon),
            }
            for f in FRACTIONS
        ],
        "adam_final": adam["loss"][-1],
        "lbfgs_reach": None if reach is None else dict(zip(("iteration", "evaluations", "time"), reach)),
    }


def plot_compare(key, result, path):
    """Loss against wall time and against gradient evaluations, log y, Adam and L-BFGS."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, style in (("adam", "-"), ("lbfgs", "--")):
        curve = result[name]["curve"]
        label = {"adam": "Adam (lr 2)", "lbfgs": "L-BFGS-B"}[name]
        axes[0].plot(curve["time"], curve["loss"], style, label=label)
        axes[1].plot(curve["evals"], curve["loss"], style, label=label)
    target = result["metrics"]["adam_final"]
    for ax, xlabel in zip(axes, ("wall time since the first step (s)", "gradient evaluations")):
        ax.axhline(target, color="grey", lw=0.8, ls=":", label="Adam after all its steps")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("assignment loss J = 10 J_content + 40 J_style")
    axes[0].legend()
    fig.suptitle(f"{PAIRS[key][0]}: the assignment's loss, noise start (seed 1)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- Part 2: candidates for the quality preset. ----------------------------------------------------


def candidate_config(name, args):
    _, changes = CANDIDATES[name]
    width, height = args.candidate_size
    config = dataclasses.replace(optimize.PRESETS["assignment"], **changes, width=width, height=height)
    iterations = args.candidate_iterations if config.optimizer == "lbfgs" else optimize.Config().iterations
    if args.quick:
        iterations = args.candidate_iterations
    return dataclasses.replace(config, iterations=iterations, save_every=iterations)


def candidates(pairs, w, args):
    """Every candidate on every candidate pair; results per candidate, final images per pair."""
    results, finals = {}, {key: {} for key in pairs}
    for name in args.candidates:
        config = candidate_config(name, args)
        results[name] = {"settings": settings_text(config), "pairs": {}}
        for key, pair in pairs.items():
            log(f"candidate {name} on {key}")
            r = run(*pair, w, config)
            summary = r.summary()
            summary["convergence"] = convergence(summary["curve"])
            del summary["curve"]
            results[name]["pairs"][key] = summary
            finals[key][name] = images.deprocess(r.image)
    return results, finals


def convergence(curve):
    """Relative loss decrease over the last quarter of the iterations (small: converged)."""
    losses = curve["loss"]
    k = (3 * (len(losses) - 1)) // 4
    return (losses[k] - losses[-1]) / abs(losses[-1])


def settings_text(config):
    """The settings of a candidate that differ from the assignment's, as `flag=value` pairs."""
    base = optimize.PRESETS["assignment"]
    changed = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value != getattr(base, field.name) and field.name not in (
            "width",
            "height",
            "save_every",
            "iterations",
        ):
            changed.append(f"{field.name}={layers_text(value) if field.name.endswith('layers') else value}")
    return ", ".join(changed) or "(the assignment's)"


def layers_text(pairs):
    return ",".join(f"{layer}:{weight:g}" for layer, weight in pairs)


# --- Part 3: layer magnitudes, to explain what the weights do. -----------------------------------------


def layer_magnitudes(key, pair, w, size):
    """Per style layer, the Gram and mean_cov style costs of the content and of the noisy start."""
    width, height = size
    config = dataclasses.replace(optimize.PRESETS["assignment"], width=width, height=height)
    problem = optimize.prepare(pair[0], pair[1], config)
    model = build_vgg(w, "avg", outputs=sorted(set(STYLE_LAYERS + ("conv4_2",))))
    style, content = model(tf.constant(problem.styles[0])), model(tf.constant(problem.content))
    rows = {}
    for start_name, start in (("content", problem.content), ("noise", problem.start)):
        out = model(tf.constant(start))
        rows[start_name] = {
            "gram": {
                l: float(costs.layer_style_cost_from_gram(costs.gram_target(style[l]), out[l]))
                for l in STYLE_LAYERS
            },
            "mean_cov": {
                l: float(costs.layer_style_cost_w2(costs.w2_target(style[l]), out[l])) for l in STYLE_LAYERS
            },
            "content": float(costs.compute_content_cost(content["conv4_2"], out["conv4_2"])),
            "tv": float(costs.total_variation_cost(tf.constant(start))),
        }
    return rows


# --- Images. -----------------------------------------------------------------------------------------


def save_png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def thumbnail(pixels, path):
    """A THUMB_WIDTH px wide JPEG of at most 60 KB."""
    img = Image.fromarray(pixels)
    img = img.resize((THUMB_WIDTH, round(img.height * THUMB_WIDTH / img.width)), Image.Resampling.LANCZOS)
    for quality in (88, 80, 70, 60):
        img.save(path, "JPEG", quality=quality, optimize=True)
        if path.stat().st_size < 60_000:
            return


def grid(tiles, path, columns):
    """Labelled tiles (label, uint8 image) in a grid, written as PNG."""
    font = ImageFont.load_default(size=13)
    h, w = tiles[0][1].shape[:2]
    strip = 36
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * (h + strip)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, pixels) in enumerate(tiles):
        x, y = (i % columns) * w, (i // columns) * (h + strip)
        sheet.paste(Image.fromarray(images.resize_to(pixels, w, h)), (x, y + strip))
        draw.multiline_text((x + 3, y + 2), label, fill="black", font=font, spacing=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def candidate_grids(finals, pairs, args, figures):
    """Per pair: content, style and every candidate; per candidate: it on every pair.

    Only grids of the demo pair go to `figures` (committed); the others to `--scratch`.
    """
    size = args.candidate_size
    for key, by_name in finals.items():
        content, style = (images.resize_to(p, *size) for p in pairs[key])
        tiles = [("content", content), ("style", style)] + [(n, px) for n, px in by_name.items()]
        grid(tiles, args.scratch / f"candidates_{key}.png", columns=4)
        if key == "demo":
            thumbnail(content, figures / "demo_content.jpg")
            thumbnail(style, figures / "demo_style.jpg")
            for name, pixels in by_name.items():
                thumbnail(pixels, figures / f"demo_{name}.jpg")
    for name in args.candidates:
        tiles = [(f"{name}\n{key}", finals[key][name]) for key in finals]
        grid(tiles, args.scratch / f"candidate_{name}.png", columns=len(tiles))


# --- The document. ----------------------------------------------------------------------------------


def machine():
    with open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return {
        "cpu": models[0] if models else platform.processor(),
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "nst_tf": nst_tf.__version__,
        "gpu": bool(tf.config.list_logical_devices("GPU")),
    }


def fmt(x):
    """3 significant digits; powers of ten as 1.23e6."""
    if x == 0 or 0.01 <= abs(x) < 1000:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def compare_section(compare_results, skipped):
    """Markdown for part 1."""
    out = []
    for key in skipped:
        out.append(f"*{PAIRS[key][0]}: skipped, its images are not in the images folder.*\n")
    for key, res in compare_results.items():
        m, adam, lbfgs = res["metrics"], res["adam"], res["lbfgs"]
        out += [
            f"### {PAIRS[key][0]}\n",
            "| run | iterations | gradient evaluations | wall s (first step incl.) | CPU s (per evaluation) "
            "| loadavg start → end | final loss |",
            "|" + " --- |" * 7,
        ]
        for name, r in (("Adam", adam), ("L-BFGS", lbfgs)):
            out.append(
                f"| {name} | {r['iterations']} | {r['evaluations']} | {r['curve']['time'][-1]:.0f} "
                f"(first {r['curve']['time'][1]:.1f}) "
                f"| {r['cpu_s']:.0f} ({r['cpu_s'] / r['evaluations']:.2f}) "
                f"| {load_text(r)} | {fmt(r['final']['total'])} |"
            )
        out += [
            "",
            "Loss after equal wall time (since the first step began), and after equal gradient evaluations:",
        ]
        out += [
            "",
            "| wall time | Adam | L-BFGS | Adam / L-BFGS | evaluations | Adam | L-BFGS | Adam / L-BFGS |",
        ]
        out += ["|" + " --- |" * 8]
        for row in m["at_time"]:
            e = round(row["fraction"] * adam["evaluations"])
            by_evals = [loss_at(res[name]["curve"], e, "evals") for name in ("adam", "lbfgs")]
            out.append(
                f"| {row['time']:.0f} s ({row['fraction']:g} × Adam's) "
                f"| {fmt(row['adam'])} | {fmt(row['lbfgs'])} "
                f"| {row['adam'] / row['lbfgs']:.1f}× | {e} | {fmt(by_evals[0])} | {fmt(by_evals[1])} "
                f"| {by_evals[0] / by_evals[1]:.1f}× |"
            )
        reach = m["lbfgs_reach"]
        if reach:
            out.append(
                f"\nL-BFGS reaches Adam's final loss ({fmt(m['adam_final'])}) after **{reach['iteration']} "
                f"iterations**, {reach['evaluations']} gradient evaluations, {reach['time']:.0f} s — "
                f"{adam['iterations'] / reach['evaluations']:.1f}× fewer gradient evaluations and "
                f"{m['adam_time'] / reach['time']:.1f}× less wall time than Adam's "
                f"{adam['iterations']} steps ({m['adam_time']:.0f} s).\n"
            )
        else:
            out.append(f"\nL-BFGS did not reach Adam's final loss ({fmt(m['adam_final'])}) in this run.\n")
        out.append(f"![loss against time, {PAIRS[key][0]}](quality/loss_{key}.png)\n")
    return out


def load_text(r):
    return f"{r['load_start'][0]:.1f} → {r['load_end'][0]:.1f}"


def candidates_section(cand):
    """The candidates' costs, terms, speed and convergence, one row per candidate and pair."""
    out = [
        "| candidate | pair | its | evals | s/eval | loadavg | final J | α·J_content | β·J_style | tv term "
        "| last-quarter decrease |",
        "|" + " --- |" * 11,
    ]
    for name, res in cand.items():
        for key, r in res["pairs"].items():
            t = r["terms"]
            its = f"{r['iterations']}" + (f" ({r['stopped']})" if r["stopped"] and r["early"] else "")
            out.append(
                f"| {name} | {key} | {its} | {r['evaluations']} | {r['s_per_eval']:.2f} | {load_text(r)} "
                f"| {fmt(r['final']['total'])} | {fmt(t['content'])} | {fmt(t['style'])} "
                f"| {'—' if t['tv'] is None else fmt(t['tv'])} | {100 * r['convergence']:.1f}% |"
            )
    return out


def demo_table(names):
    """Markdown table of the committed demo thumbnails."""
    cells = [("content", "demo_content.jpg"), ("style", "demo_style.jpg")] + [
        (n, f"demo_{n}.jpg") for n in names
    ]
    out = []
    for i in range(0, len(cells), 4):
        row = cells[i : i + 4]
        out += ["| " + " | ".join(label for label, _ in row) + " |", "|" + " --- |" * len(row)]
        out += ["| " + " | ".join(f"![{label}](quality/{file})" for label, file in row) + " |", ""]
    return out


def magnitudes_section(mags):
    out = [
        "| pair | start | style loss | " + " | ".join(STYLE_LAYERS) + " | J_content | TV |",
        "| --- | --- | --- |" + " --- |" * (len(STYLE_LAYERS) + 2),
    ]
    for key, rows in mags.items():
        for start, row in rows.items():
            for loss in ("gram", "mean_cov"):
                values = " | ".join(fmt(row[loss][l]) for l in STYLE_LAYERS)
                out.append(
                    f"| {key} | {start} | {loss} | {values} | {fmt(row['content'])} | {fmt(row['tv'])} |"
                )
    return out


# --- The prose. Observations were written by looking at the images of the run recorded below; --------
# --- re-read them (the grids are in --scratch) when you re-run with other settings. ------------------

OBSERVATIONS_COMPARE = """\
**Speed.** L-BFGS is the better optimiser for this loss: it reaches Adam's 200-step loss in 2.6–4.9×
fewer gradient evaluations (2.4–4.3× less wall time), and after the same number of evaluations its
loss is 2–13× lower. One evaluation is nearly the same work either way: L-BFGS used about 10 % more
CPU seconds per evaluation above (scipy's bookkeeping, float64 copies of the image, its first step's
extra tracing), which is why its wall-time advantage is a little smaller than its evaluation
advantage. This part ran on an otherwise idle machine (the load average above is this process's own
two threads), with the step of `bench/`: 1.2 s per Adam step at 400×300.

**Pictures** (400×300, kept in `--scratch`, not committed). *Tübingen*: Adam's 200 steps leave the
river front, the gabled houses and the church tower clearly recognisable under a fine, noisy swirl
texture. L-BFGS's 200 iterations on the same loss (13× lower) give nearly a copy of The Starry Night:
the houses dissolve into swirls, yellow stars and a dark cypress-like mass, and only the tower's
silhouette is left. *Louvre/Monet*: Adam's result shows the pyramid outlined in red and green strokes,
with speckle noise over the sky; L-BFGS's is smoother, with bigger poppy-like red blobs, and the
pyramid is reduced to an outline of red dots. So the assignment's loss is not one to minimise to the end:
with alpha 10 and beta 40 the style term outweighs the content term about 10⁵ to 1 (section 2), and
the content survives in the assignment only because Adam stops long before the minimum. A preset that
uses L-BFGS has to rebalance the loss — section 2."""
OBSERVATIONS_CANDIDATES = {
    "assignment": "a busy texture over everything: on Tübingen the houses survive only as outlines "
    "under swirls and speckle, on the demo the cat's eyes and nose survive in a tangle of pink, "
    "yellow and blue strokes; the loss is still falling fast (38–59 % over the last quarter).",
    "provisional": "far too much style: Tübingen turns into The Starry Night with a church-tower "
    "silhouette, the cat into swirls with a hint of an eye. beta 1e3 on the Gram loss outweighs "
    "the content by about 10⁴ (table above), so it was rejected.",
    "gram": "the content is back and the strokes are strong: the cat clear, with bold blue and yellow "
    "swirls across its face; Tübingen's houses clear under a swirling sky. Next to `quality` it is "
    "harsher and noisier, with high-frequency stripes in flat areas, and its loss is still falling "
    "(3–5 % over the last quarter).",
    "quality": "the content fully readable (the cat's eyes, nose and whiskers; every house, the "
    "tower, the river's reflections) and painted in the style's colours and strokes: blue and "
    "yellow brush strokes that follow the cat's fur, swirls in Tübingen's sky. Converged: the loss "
    "fell about 1 % over the last quarter.",
    "quality-beta0.3": "too little style: the cat keeps its own orange-brown fur under a light "
    "stroke texture, Tübingen its blue sky.",
    "quality-beta3": "more style than `quality` (stronger swirls, more yellow), the content still "
    "clear; a good choice for a bolder picture (`--beta 3`). On Tübingen L-BFGS-B stopped after 57 "
    "iterations with scipy's 'ABNORMAL' line-search ending, which the default beta 1 did not do.",
    "quality-noise": "indistinguishable from `quality` at thumbnail size, with a few more specks in "
    "flat areas; the same final loss. Starting from the content is simpler and never worse.",
    "quality-adam": "the same loss after 200 Adam steps as L-BFGS after 100 iterations (about 104 "
    "gradient evaluations), and "
    "visibly more speckled (Adam's fixed step leaves high-frequency noise). L-BFGS it is.",
    "quality-tv": "slightly smoother flat areas, otherwise like `quality`; the TV term is 7–8 % of the "
    "loss. Not needed with mean_cov from the content; `--tv_weight 1e-5` is there for those who "
    "want it.",
    "quality-shallow": "like `quality` with slightly finer strokes; no reason to leave the "
    "assignment's equal layer weights.",
}
RECOMMENDATION = """\
Why: the candidate that keeps the content recognisable under a clear style on both pairs, and has
converged, is `quality`; each change from it (less or more style, noise start, Adam, smoothing,
shallow layers) was tried and is worse or no better (section 2). L-BFGS is the optimiser because it
reaches a given loss several times sooner (section 1, and `bench/time_to_loss.py`: 4.0× sooner than
Adam at 256 px). The mean-and-covariance loss over the Gram loss: its layers' terms are within about
10² of each other where the Gram loss's conv4_1 term is 15 to 70 000 times each of the others (section
2's magnitudes), so every style layer counts; and alpha = beta = 1 is a natural balance (both terms
end at the same order of magnitude) where the Gram loss needs beta around 1e-3. 200 iterations: at 256 px the
loss stops moving within 100; the preset's default size (400×300) has 2.4× the pixels."""

STYLE_LOSSES_TEXT = """\
Both compare statistics of a layer's activations `A` (n_H·n_W positions × n_C channels) between the
style image and the generated one; neither cares where in the image a feature occurs.

* **`gram`** (the assignment's): `G = AᵀA / (n_H n_W)`, the *uncentred* second moments of the
  channels, and the layer cost `Σ(G_S − G_G)² / (4 n_C²)`. One matrix mixes how strongly each channel
  fires on average (the mean) with how channels vary together (the covariance): `G = Σ + μμᵀ`. Because
  it squares second moments, its scale grows with the fourth power of the activations, so layers with
  large activations dominate by orders of magnitude (section 2's table: conv4_1 is 15 to 70 000× each
  of the others and conv5_1 hardly counts), and its gradient is large far from the target and tiny near it.
* **`mean_cov`**: fit a Gaussian `N(μ, Σ)` to each layer's activations and take the squared
  2-Wasserstein distance between the style's and the generated image's Gaussians,
  `|μ_S − μ_G|² + tr Σ_S + tr Σ_G − 2 tr((Σ_S^½ Σ_G Σ_S^½)^½)`, divided by n_C (`costs.layer_style_cost_w2`,
  as in crowsonkb/style-transfer-pytorch). The mean and the covariance are matched separately, the
  distance is in the units of the activations squared (not to the fourth), so the layers' costs are
  within about two orders of magnitude of each other and the gradient stays informative close to the
  target. Its values are much smaller than the Gram loss's, so it needs a different `beta`: with
  `alpha=1` and L-BFGS, about 1 for `mean_cov` where the Gram loss needs about 1e-3 (section 2).
"""

CONTROLS = (  # (setting, what it does), rendered as a table
    (
        "`optimizer`",
        "`adam`: the assignment's first-order steps of about `learning_rate` pixel levels each; with 200 "
        "steps it stops far from the loss's minimum, which is what keeps the content visible under the "
        "assignment's style-heavy weights. `lbfgs`: scipy's L-BFGS-B, a quasi-Newton method with a line "
        "search, pixels boxed to 0–255; it reaches much lower losses per gradient evaluation (section 1), "
        "so the loss's weights, not the optimiser's slowness, then decide the picture.",
    ),
    (
        "`lbfgs_history`",
        "corrections L-BFGS keeps (10); more costs memory (2 × history × pixels × 3 float64).",
    ),
    ("`learning_rate`", "Adam's step in pixel levels (0–255); larger moves faster and noisier."),
    (
        "`init`",
        "where the optimisation starts: `noise` (the assignment's 60 % uniform noise + 40 % content), "
        "`content` (the photo itself: the content cost starts at 0 and the picture stays sharp), `random` "
        "(pure noise: only the loss brings the content back), or an image file.",
    ),
    (
        "`alpha`, `beta`",
        "weights of the content and style costs. Only their ratio matters (Adam and L-BFGS are both "
        "invariant to scaling the whole loss), and the useful ratio depends on `style_loss` and the layers, "
        "because the costs' scales differ by orders of magnitude (table in section 2).",
    ),
    (
        "`tv_weight`",
        "weight of Σ(neighbour differences)² over the image, which smooths. It is a sum over all pixels "
        "of squared pixel levels (about 1e7–1e8 for a 256×192 photo), so it must be judged against the "
        'other terms (candidate table: "tv term"). Since issue 15 the sum is scaled by '
        "(512 / long side)², so one weight smooths alike at every size (the plain sum at 512 px; the "
        "candidates above predate it).",
    ),
    (
        "`content_loss`",
        "`mse` (the assignment's) or `relative`: the content cost divided by the content's own feature "
        "energy. That energy falls as the same photo is enlarged (1.4× per 2× on the Golden Gate photo), "
        "so with `mse` the content pulls less at larger sizes; `relative` pulls alike at every size and on "
        "every photo (section 5).",
    ),
    ("`content_layers`", "where the content is compared (conv4_2: the arrangement of objects, not texture)."),
    (
        "`style_layers`",
        "which layers' statistics are matched, and each one's coefficient. Shallow layers carry colour and "
        "fine texture, deep ones larger motifs. The coefficients multiply costs whose scales differ by "
        "10–10⁵× (table in section 2), so with `gram`, 0.25 against 0.15 changes little: conv4_1 dominates.",
    ),
    ("`style_loss`", "`gram` or `mean_cov`, section 3."),
    ("`style_scale`", "size of the style image relative to the working size: larger gives larger motifs."),
    (
        "`style_size`",
        "0: the style is sized from the working size (at each coarse-to-fine scale); N: its long side "
        "is N × `style_scale` px at every size and scale (crowsonkb's fixed style size), so the strokes "
        "and the statistics matched do not change with the output's size (section 5).",
    ),
    (
        "`preserve_colors`",
        "`luminance`: stylise the brightness only and keep the photo's colours; `histogram`: recolour "
        "the style image to the photo's colour statistics first.",
    ),
    ("`style_blend_weights`", "mix several style images' statistics."),
    ("`ema`", "report an average of Adam's iterates (smooths Adam's jitter); no effect on L-BFGS."),
    (
        "`width`, `height`",
        "working size; VGG's features have fixed sizes in pixels, so at larger sizes the style's "
        "strokes are relatively finer.",
    ),
    (
        "`iterations`, `save_every`",
        "steps (L-BFGS iterations), and how often costs and images are reported (each report is one "
        "extra forward pass).",
    ),
)


def header(results):
    m = results["machine"]
    runs = [results[part]["run"] for part in PARTS if part in results]
    commands = sorted({run["argv"] for run in runs})
    lines = [
        "# Image quality: Adam against L-BFGS, and the `quality` preset",
        "",
        "Generated, from the repository root, by",
        "",
        "```sh",
        *(f"{COMMAND}{argv}" for argv in commands),
        "```",
        "",
        f"on {m['cpu']}, {m['affinity']} of {m['cores']} cores usable, {'a GPU' if m['gpu'] else 'no GPU'}; "
        f"Python {m['python']}, TensorFlow {m['tensorflow']}, NumPy {m['numpy']}, SciPy {m['scipy']}, "
        f"nst_tf {m['nst_tf']}; weights: the embedded default ({results['weights']}). The classic images "
        "are read from `--images` (default `../shared/images`) and nothing made from them is committed.",
        "",
    ]
    for part in PARTS:
        if part in results:
            r = results[part]["run"]
            lines.append(
                f"* Part {part!r} finished {r['finished']} after {r['minutes']:.0f} minutes; load average "
                f"(1 min) {r['load_start'][0]:.1f} at its start, {r['load_end'][0]:.1f} at its end."
            )
    lines += [
        "",
        "Wall times depend on what else the 2-core machine was doing: comparisons are between runs of "
        "one process, each run's load average is listed (about 2 is this process's own two threads), "
        "and gradient evaluations (which load does not change) are given beside the times. "
        "`python docs/make_quality.py --quick` is a smoke run (tiny "
        "images, a few iterations, into a temporary folder); `--help` lists the flags (sizes, iterations, "
        "candidates, pairs; `--parts candidates` redoes one part and keeps the other's results from "
        "`quality/results.json`; `--parts render` only rewrites this file).",
        "",
    ]
    return lines


def preset_check():
    """Whether nst_tf's PRESETS["quality"] (at the time of writing) is the proposal."""
    current = optimize.PRESETS["quality"]
    differ = [
        f"`{f.name}` is {getattr(current, f.name)!r}, proposed {getattr(PROPOSED_PRESET, f.name)!r}"
        for f in dataclasses.fields(current)
        if getattr(current, f.name) != getattr(PROPOSED_PRESET, f.name) and f.name != "save_every"
    ]
    if not differ:
        return "`nst_tf.methods.gatys.optimize.PRESETS['quality']` is this proposal."
    return (
        "This was the preset until issue 15 found it too weak at 512 px beside jcjohnson/neural-style's"
        " published examples; `nst_tf.methods.gatys.optimize.PRESETS['quality']` is now the setting of"
        " section 5, jcjohnson's balance (it differs in "
        + ", ".join(
            f"`{f.name}`" for f in dataclasses.fields(current) if f"`{f.name}` is" in " ".join(differ)
        )
        + ")."
    )


def summary_lines(results):
    """The key numbers, the proposed preset as code and flags, and why."""
    out = []
    for key, res in results.get("compare", {}).get("pairs", {}).items():
        m, its = res["metrics"], res["adam"]["iterations"]
        at = m["at_time"][-1]
        text = (
            f"* **{PAIRS[key][0]}**, the assignment's loss: after the wall time of Adam's {its} steps "
            f"({at['time']:.0f} s) Adam is at {fmt(at['adam'])}, L-BFGS at {fmt(at['lbfgs'])} "
            f"({at['adam'] / at['lbfgs']:.1f}× lower)"
        )
        reach = m["lbfgs_reach"]
        if reach:
            text += (
                f"; L-BFGS reaches Adam's final loss after {reach['iteration']} iterations "
                f"({reach['evaluations']} gradient evaluations, {reach['time']:.0f} s): "
                f"{its / reach['evaluations']:.1f}× fewer evaluations"
            )
        out.append(text + ".")
    changed = [
        f"{f.name}={getattr(PROPOSED_PRESET, f.name)!r}"
        for f in dataclasses.fields(PROPOSED_PRESET)
        if getattr(PROPOSED_PRESET, f.name) != f.default or f.name == "iterations"
    ]
    out += [
        "",
        "Proposed `quality` preset (every other setting as the assignment's):",
        "",
        "```python",
        f"Config({', '.join(changed)})",
        "```",
        "",
        RECOMMENDATION,
        "",
        preset_check(),
    ]
    return out


def write_doc(results, path):
    """Render quality.md from the results (numbers) and the prose of this script."""
    lines = header(results)
    lines += ["## Summary", ""] + summary_lines(results) + [""]
    if "compare" in results:
        c = results["compare"]
        w, h = c["size"]
        lines += [
            f"## 1. Adam against L-BFGS on the assignment's loss ({w}×{h})",
            "",
            COMPARE_METHOD.format(w=w, h=h, its=c["iterations"]),
            "",
        ]
        lines += compare_section(c["pairs"], c["skipped"])
        lines += ["", OBSERVATIONS_COMPARE, ""]
    if "candidates" in results:
        c = results["candidates"]
        w, h = c["size"]
        lines += [f"## 2. Choosing the `quality` preset ({w}×{h})", "", CANDIDATES_METHOD, ""]
        lines += ["### How big each term is", "", MAGNITUDES_TEXT.format(w=w, h=h), ""]
        lines += magnitudes_section(c["magnitudes"]) + [""]
        lines += ["### The candidates", ""]
        lines += [f"* **{n}**: {CANDIDATES[n][0]} (`{r['settings']}`)" for n, r in c["results"].items()] + [
            ""
        ]
        lines += candidates_section(c["results"]) + [""]
        lines += ["### What they look like (the demo pair, 256 px thumbnails)", ""]
        lines += demo_table(list(c["results"])) + [""]
        lines += ["### What I see", ""]
        lines += [f"* **{name}**: {text}" for name, text in OBSERVATIONS_CANDIDATES.items()] + [""]
    lines += ["## 3. The two style losses", "", STYLE_LOSSES_TEXT, "", "## 4. What each control does", ""]
    lines += ["| setting | what it does |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in CONTROLS]
    kept = ""  # section 5 on is docs/make_golden_gate.py's (and its prose): keep it
    if path.exists() and "\n## 5. " in path.read_text():
        kept = path.read_text()[path.read_text().index("\n## 5. ") :]
    path.write_text("\n".join(lines).rstrip() + "\n" + kept)


COMPARE_METHOD = """\
Both optimisers minimise the assignment's loss exactly (alpha 10, beta 40, Gram style loss, content
conv4_2, conv1_1 … conv5_1 at 0.2 each, no TV) from the same start (the assignment's noisy content,
seed 1), at {w}×{h}: Adam (lr 2) for {its} steps, L-BFGS-B (history 10, pixels boxed to 0–255) for up
to {its} iterations. Each run is one `nst_tf.methods.gatys.optimize.stylize()` call with
`save_every={its}`, so no
extra forward passes are made except the one report after the first step (the same for both).

The loss of every iterate is recorded without extra work: this script wraps
`optimize.make_train_step` (each Adam step returns the loss of the image it starts from) and
`scipy.optimize.minimize` (L-BFGS-B's callback receives each iterate's loss; the wrapper also counts
gradient evaluations, which L-BFGS spends more than one per iteration when its line search
backtracks). Time is measured from the first step's start and includes tracing the `tf.function`s
(the "first" column), which both optimisers pay once. "Gradient evaluations" counts forward+backward
passes: one per Adam step."""

CANDIDATES_METHOD = """\
Losses with different settings are not comparable, so the candidates are judged by their pictures
(below; the grids of the classic pairs are written to `--scratch` for looking at, not committed) and
by whether they have converged (the loss decrease over the last quarter of the iterations: small
means more iterations would not change the picture much). The candidates run at the size and
iterations given in the table; L-BFGS ones start from the content unless said otherwise."""

MAGNITUDES_TEXT = """\
The style cost of each layer (coefficient 1) and the content cost, of the content image itself and
of the assignment's noisy start, at {w}×{h}. These explain the weights: the assignment's
`alpha=10, beta=40` make the style term about 10⁵ times the content term, so a method that actually
minimises that loss (L-BFGS) throws the content away; Adam keeps it only because 200 steps of
about 2 pixel levels cannot get far from the start. With L-BFGS, `beta/alpha` must be orders of
magnitude smaller for the Gram loss (about 1e-3) than for `mean_cov` (about 1), and with `gram` the
conv4_1 term outweighs the others whatever their coefficients."""


# --- Main. -----------------------------------------------------------------------------------------


def run_compare(w, args, figures):
    """Part 1 on every classic pair whose images are there."""
    result = {
        "size": list(args.compare_size),
        "iterations": args.compare_iterations,
        "pairs": {},
        "skipped": [],
    }
    for key in CLASSIC:
        pair = load_pair(key, args.images)
        if pair is None:
            result["skipped"].append(key)
            continue
        result["pairs"][key] = compare(key, pair, w, args)
        plot_compare(key, result["pairs"][key], figures / f"loss_{key}.png")
    return result


def run_candidates(w, args, figures):
    """Part 2: the candidates, their grids and thumbnails, and the layer magnitudes."""
    pairs = {key: load_pair(key, args.images) for key in args.candidate_pairs}
    pairs = {key: pair for key, pair in pairs.items() if pair is not None}
    results, finals = candidates(pairs, w, args)
    candidate_grids(finals, pairs, args, figures)
    return {
        "size": list(args.candidate_size),
        "pairs": list(pairs),
        "results": results,
        "magnitudes": {
            key: layer_magnitudes(key, pair, w, args.candidate_size) for key, pair in pairs.items()
        },
    }


def size(text):
    w, h = text.lower().split("x")
    return int(w), int(h)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--images", type=Path, default=REPO.parent / "shared" / "images", help="folder of the classic images"
    )
    p.add_argument(
        "--out", type=Path, help="folder for quality.md and quality/ (default docs/; --quick: a temp folder)"
    )
    p.add_argument(
        "--scratch",
        type=Path,
        help="images made from the classic pairs, to look at; never commit them (default: a temp folder)",
    )
    p.add_argument(
        "--parts",
        default="compare,candidates",
        help="compare and/or candidates (the other keeps its results); render: only rewrite quality.md",
    )
    p.add_argument("--compare_size", type=size, default=(400, 300), help="WxH of the Adam/L-BFGS comparison")
    p.add_argument("--compare_iterations", type=int, default=200)
    p.add_argument("--candidate_size", type=size, default=(256, 192), help="WxH of the candidate runs")
    p.add_argument(
        "--candidate_iterations", type=int, default=100, help="L-BFGS iterations of the candidates"
    )
    p.add_argument("--candidates", default=",".join(CANDIDATES), help="comma-separated names, see CANDIDATES")
    p.add_argument("--candidate_pairs", default="demo,tubingen", help="pairs the candidates run on")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, few iterations, temp output")
    args = p.parse_args(argv)
    if args.quick:
        args.compare_size, args.candidate_size = (96, 72), (64, 48)
        args.compare_iterations = args.candidate_iterations = 6
        args.candidate_pairs = "demo"
    if args.out is None:
        args.out = Path(tempfile.gettempdir()) / "nst_quality_quick" if args.quick else REPO / "docs"
    if args.scratch is None:
        args.scratch = Path(tempfile.gettempdir()) / (
            "nst_quality_quick/scratch" if args.quick else "nst_quality"
        )
    args.parts = set(args.parts.split(","))
    args.candidates = [n for n in args.candidates.split(",") if n]
    args.candidate_pairs = [k for k in args.candidate_pairs.split(",") if k]
    return args


PARTS = {"compare": run_compare, "candidates": run_candidates}


def main(argv=None):
    args = parse_args(argv)
    figures = args.out / "quality"
    figures.mkdir(parents=True, exist_ok=True)
    results_path = figures / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    w = weights.embedded_default()
    argv_text = "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    for part, work in PARTS.items():
        if part in args.parts:
            started, load_start = time.perf_counter(), loadavg()
            results[part] = work(w, args, figures)
            results[part]["run"] = {
                "argv": argv_text,
                "finished": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
                "minutes": (time.perf_counter() - started) / 60,
                "load_start": load_start,
                "load_end": loadavg(),
            }
            results["machine"] = machine()
            results["weights"] = f"{w.source}, sha256 {w.sha256[:16]}"
            results_path.write_text(json.dumps(results, indent=1))
    write_doc(results, args.out / "quality.md")
    log(f"wrote {args.out / 'quality.md'}; images of the classic pairs (do not commit) in {args.scratch}")


if __name__ == "__main__":
    main()
