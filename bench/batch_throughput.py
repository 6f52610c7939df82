"""Batch throughput on this CPU: images per hour, one pair at a time vs several optimised together.

Usage (from the repository root; the TF venv with nst_tf installed):

    /work/venv/bin/python bench/batch_throughput.py                 # 256 px, 1/2/4 per batch, ~3 min
    /work/venv/bin/python bench/batch_throughput.py --per_batch 1 2 --steps 5

It measures, with the real default weights, (1) the steady Adam step time of `nst_tf.batch`'s
engine for N images in one (N, H, W, 3) variable, (2) the fixed cost of a new pair: in
`optimize.stylize` (VGG built, targets and step traced for every pair), in the batch engine
(content targets only, after the first pair), and for a whole `python -m nst_tf.run` process.
From these it projects images per hour at the assignment's 200 iterations. See bench/README.md.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import contention  # noqa: E402
import tensorflow as tf  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf import images  # noqa: E402
from nst_tf.app import batch  # noqa: E402
from nst_tf.methods.gatys import optimize  # noqa: E402
from nst_tf.nets import weights  # noqa: E402

BENCH = Path(__file__).resolve().parent
SHARED_IMAGES = BENCH.parent.parent / "shared" / "images"
SHIPPED_IMAGES = BENCH.parent / "images"
CONTENTS = ("tubingen.jpg", "louvre.jpg", "golden_gate.jpg", "dancing.jpg")
STYLE = "starry_night.jpg"
DEFAULT_OUT = BENCH / "results" / "batch.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long_side", type=int, default=256, help="working size: long side, 4:3")
    parser.add_argument("--per_batch", type=int, nargs="+", default=[1, 2, 4], help="images per batch")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps after the first")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round (median reported)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the sizes, interleaved")
    parser.add_argument("--project_iterations", type=int, default=200, help="iterations per image")
    parser.add_argument("--skip_cli", action="store_true", help="do not time a whole nst_tf.run process")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def image_paths():
    """Four content images and one style: ../shared/images if there, else the shipped two."""
    if all((SHARED_IMAGES / name).is_file() for name in (*CONTENTS, STYLE)):
        return [SHARED_IMAGES / name for name in CONTENTS], SHARED_IMAGES / STYLE
    return [SHIPPED_IMAGES / "chelsea.jpg"] * len(CONTENTS), SHIPPED_IMAGES / "swirls.jpg"


def loaded_items(contents, style, config, n):
    """n `batch.Loaded` items (the style shared, so its targets are cached as in a batch)."""
    items = []
    for k in range(n):
        job = batch.Job(f"pair{k}", str(contents[k % len(contents)]), str(style), "unused.png", "-")
        items.append(batch.load_job(job, config))
    return items


def timed_steps(stylist, items):
    """(wall s, process CPU s) of each step of one `stylist.stylize(items)` (the first includes setup)."""
    stamps = [(time.perf_counter(), time.process_time())]
    stylist.stylize(items, on_step=lambda i: stamps.append((time.perf_counter(), time.process_time())))
    return [(b[0] - a[0], b[1] - a[1]) for a, b in zip(stamps, stamps[1:])]


def engine_rows(vgg_weights, contents, style, config, args):
    """Per N: steady step wall and CPU time, tracing, and the setup of a new group of pairs.

    The sizes are measured in turn, round after round, so that a change in the other processes'
    load affects them alike.
    """
    stylist = batch.Stylist(vgg_weights, config)
    groups = {n: loaded_items(contents, style, config, n) for n in args.per_batch}
    traced = {n: timed_steps(stylist, groups[n])[0][0] for n in args.per_batch}
    steps, setups = {n: [] for n in groups}, {n: [] for n in groups}
    with contention.Meter() as meter:
        for _ in range(args.rounds):
            for n, items in groups.items():
                measured = timed_steps(stylist, items)
                steps[n] += measured[1 + args.warmup :]
                setups[n].append(measured[0][0] - statistics.median(w for w, _ in measured[1:]))
    rows = [_engine_row(n, steps[n], setups[n], traced[n]) for n in groups]
    for row in rows:
        row["others_cpu"] = meter.others
        print(row, flush=True)
    return rows


def _engine_row(n, steps, setups, traced):
    wall, cpu = statistics.median(w for w, _ in steps), statistics.median(c for _, c in steps)
    return {
        "images_per_batch": n,
        "step_s": round(wall, 4),
        "step_per_image_s": round(wall / n, 4),
        "cpu_per_image_step_s": round(cpu / n, 4),
        "first_step_traced_s": round(traced, 3),
        "new_group_overhead_s": round(statistics.median(setups), 3),
        "timed_steps": len(steps),
    }


def stylize_overhead(vgg_weights, contents, style, config):
    """Fixed cost of one pair through `optimize.stylize` (model, targets, tracing): time to its
    first Progress minus a steady step, for two pairs in the same process (the second is warm)."""
    style_image = images.load_image(style)
    overheads = []
    for content in contents[:2]:
        start, stamps = time.perf_counter(), []
        for _ in optimize.stylize(images.load_image(content), style_image, vgg_weights, config):
            stamps.append(time.perf_counter())
        steps_s = [b - a for a, b in zip(stamps, stamps[1:])]
        overheads.append(round(stamps[0] - start - statistics.median(steps_s[:-1]), 3))
    return overheads


def cli_seconds(content, style, side):
    """Wall time of `python -m nst_tf.run` for 1 iteration: process start, weights, setup, summaries."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "nst_tf.run", "--content", str(content), "--style", str(style)]
        cmd += [
            "--width",
            str(side),
            "--height",
            str(side * 3 // 4),
            "--iterations",
            "1",
            "--output_dir",
            out,
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return round(time.perf_counter() - start, 2)


def per_hour(step_per_image, overhead_per_image, iterations):
    return round(3600 / (step_per_image * iterations + overhead_per_image), 1)


def projections(rows, stylize_setup, cli_wall, iterations):
    """Images per hour at `iterations` per image, for each way of running a batch."""
    single = next(r for r in rows if r["images_per_batch"] == 1)
    out = {
        "nst_tf.run per pair (new process each)": per_hour(
            single["step_per_image_s"], cli_wall - single["step_s"], iterations
        )
        if cli_wall
        else None,
        "optimize.stylize per pair (one process)": per_hour(
            single["step_per_image_s"], stylize_setup, iterations
        ),
    }
    for r in rows:
        overhead = max(r["new_group_overhead_s"], 0.0) / r["images_per_batch"]
        out[f"nst_tf.batch, {r['images_per_batch']} per batch"] = per_hour(
            r["step_per_image_s"], overhead, iterations
        )
    return out


def main(argv=None):
    args = parse_args(argv)
    contents, style = image_paths()
    side = args.long_side
    config = optimize.Config(width=side, height=side * 3 // 4, iterations=1 + args.warmup + args.steps)
    load_before = os.getloadavg()
    vgg_weights = weights.resolve_weights(None)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    rows = engine_rows(vgg_weights, contents, style, config, args)
    stylize_setup = stylize_overhead(vgg_weights, contents, style, config)
    cli_wall = None if args.skip_cli else cli_seconds(contents[0], style, side)
    record = {
        "benchmark": "nst_tf.batch throughput: images per hour, 1 vs N images per (N, H, W, 3) batch",
        "started_utc": started,
        "machine": {"nproc": os.cpu_count(), "tensorflow": tf.__version__, "nst_tf": nst_tf.__version__},
        "settings": {"warmup": args.warmup, "steps": args.steps, "rounds": args.rounds},
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "size": f"{config.width}x{config.height}",
        "weights": vgg_weights.source,
        "engine": rows,
        "stylize_setup_s": stylize_setup,
        "cli_one_iteration_s": cli_wall,
        "images_per_hour_at": args.project_iterations,
        "images_per_hour": projections(rows, stylize_setup[-1], cli_wall, args.project_iterations),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["images_per_hour"], indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
