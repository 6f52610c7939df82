"""WCT at 512x512 with numpy's OpenBLAS on its default threads in the covariance powers, against
one thread (`nst_tf.blas.one_thread`, what `transforms.covariance_power` now holds it to), idle and
with a busy process beside.

Usage (from the repository root):

    .venv/bin/python bench/blas_threads.py     # ~6 min idle

One round is one WCT image (`--method wct`'s engine, five levels, bfloat16 where native, a new
style each image: its ten covariance powers of 64 ... 512 channels, each between TensorFlow's
encoder and decoder passes; the package's decoders). The peer is the same engine with numpy's
default threads in the powers (the code before `one_thread`); the two sides interleaved, `--rounds`
images each, first idle, then while a child process spins on one core (a training or another worker
beside the run). Prints each side's median and worst seconds per image and in the powers, and the
peer's over ours.

Then L-BFGS (`--preset quality`'s optimiser, scipy's L-BFGS-B, whose vector operations on the
image's pixels run on OpenBLAS; `lbfgs.iterates` now holds it to one thread), idle: seconds per
iteration (the median after the first 10) of `--lbfgs_iterations` at 256x192 and at 512x384, numpy's
default threads against one, interleaved, `--lbfgs_rounds` runs each, each run a process of its own.

Unlike the other benches it leaves the thread variables (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS)
as the user has them, unset here: set to 2, as `bench_step` sets them for the PyTorch comparisons,
L-BFGS's gain fell from 1.2x to 1.05x. Writes bench/results/blas_threads.json.
"""

import argparse
import contextlib
import dataclasses
import datetime
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import contention
import numpy as np
import tensorflow as tf
import timing

from nst_tf import blas, images, precision
from nst_tf.methods import base, get
from nst_tf.methods.gatys import optimize
from nst_tf.methods.gatys.config import PRESETS
from nst_tf.methods.wct import transforms
from nst_tf.methods.wct.config import WCTSettings
from nst_tf.nets import weights

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "blas_threads.json"
SIZE = 512


def machine():
    """What the numbers were measured on, and the thread environment (the user's: none set). Not
    `bench_step.machine_info`: importing bench_step sets the thread variables to 2."""
    return {
        "cpu_model": timing.cpuinfo_field("model name"),
        "nproc": os.cpu_count(),
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "thread_variables": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@contextlib.contextmanager
def blas_threads(threads):
    """Inside the block the package's `blas.one_thread` holds OpenBLAS to one thread ("one", as
    shipped) or leaves numpy's default threads ("default": the code before it, the peer)."""
    original = blas.one_thread
    if threads == "default":
        blas.one_thread = contextlib.nullcontext
    try:
        yield
    finally:
        blas.one_thread = original


class Powers:
    """`transforms.covariance_power` timed, under numpy's default threads or one (`threads`)."""

    def __init__(self):
        self.power, self.seconds, self.threads = transforms.covariance_power, 0.0, "one"

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            with blas_threads(self.threads):
                return self.power(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def measure(engine, inputs, settings, powers, rounds):
    seconds = {"default": [], "one": []}
    in_powers = {"default": [], "one": []}
    with contention.Meter() as meter:
        for _ in range(rounds):
            for threads in seconds:
                powers.threads, powers.seconds = threads, 0.0
                engine.style_cache.clear()  # a new style every image
                start = time.perf_counter()
                engine.stylise(inputs, settings)
                seconds[threads].append(time.perf_counter() - start)
                in_powers[threads].append(powers.seconds)
    return {
        "others_cpu": meter.others,
        **{
            t: {
                "median": statistics.median(seconds[t]),
                "worst": max(seconds[t]),
                "powers_median": statistics.median(in_powers[t]),
                "powers_worst": max(in_powers[t]),
                "seconds": seconds[t],
                "powers_seconds": in_powers[t],
            }
            for t in seconds
        },
        "default_over_one": statistics.median(seconds["default"]) / statistics.median(seconds["one"]),
    }


def lbfgs_seconds(content, style, vgg_weights, size, iterations, threads):
    """Median seconds per L-BFGS iteration (after the first 10) of the quality preset at `size`."""
    config = dataclasses.replace(
        PRESETS["quality"], iterations=iterations, width=size[0], height=size[1], scales=1
    )
    with blas_threads(threads):  # what `lbfgs.iterates` enters
        ends = [time.perf_counter() for _ in optimize.stylize(content, style, vgg_weights, config)]
    return statistics.median(np.diff(ends)[10:].tolist())


def measure_lbfgs(args):
    """Each L-BFGS run in a fresh process (as a user's run is): in one process that alternates the
    two, the default threads' cost did not show (1.03x and 0.97x, 2026-12-07)."""
    out = {}
    for size in ((256, 192), (512, 384)):
        seconds = {"default": [], "one": []}
        with contention.Meter() as meter:
            for _ in range(args.lbfgs_rounds):
                for threads in seconds:
                    child = [sys.executable, __file__, "--lbfgs_child", f"{size[0]},{size[1]},{threads}"]
                    child += ["--lbfgs_iterations", str(args.lbfgs_iterations)]
                    done = subprocess.run(child, check=True, capture_output=True, text=True)
                    seconds[threads].append(float(done.stdout.split()[-1]))
        out[f"{size[0]}x{size[1]}"] = {
            "others_cpu": meter.others,
            "seconds_per_iteration": seconds,
            "default_over_one": statistics.median(seconds["default"]) / statistics.median(seconds["one"]),
        }
        d, o = (statistics.median(seconds[t]) for t in ("default", "one"))
        print(
            f"L-BFGS {size[0]}x{size[1]}: default threads {d:.3f} s an iteration, one thread {o:.3f} s; "
            f"default / one = {d / o:.2f} (others' CPU {meter.others})"
        )
    return out


def lbfgs_child(spec, iterations):
    width, height, threads = spec.split(",")
    content = images.load_image(ROOT / "images" / "chelsea.jpg")
    style = images.load_image(ROOT / "images" / "swirls.jpg")
    vgg_weights = weights.resolve_weights(log=lambda message: None)
    print(lbfgs_seconds(content, style, vgg_weights, (int(width), int(height)), iterations, threads))


def measure_wct(args):
    """The WCT part: {idle, one_core_busy} (see the module's docstring)."""
    powers = Powers()
    transforms.covariance_power = powers
    vgg_weights = weights.resolve_weights(log=lambda message: None)
    settings = WCTSettings(width=SIZE, height=SIZE, precision=precision.resolve("auto"))  # shipped decoders
    content, style = (images.load_image(ROOT / "images" / name) for name in ("chelsea.jpg", "swirls.jpg"))
    content, style = (images.resize_to(image, SIZE, SIZE) for image in (content, style))
    engine = get("wct").engine(settings, vgg_weights)
    inputs = base.prepare_inputs(content, engine.prepare_style([style]), settings)
    for threads in ("default", "one"):  # warm-up
        powers.threads = threads
        engine.stylise(inputs, settings)
    out = {"precision": settings.precision, "size": [SIZE, SIZE], "rounds": args.rounds}
    out["idle"] = measure(engine, inputs, settings, powers, args.rounds)
    busy = multiprocessing.get_context("spawn").Process(target=spin, args=(900,), daemon=True)
    busy.start()
    try:
        time.sleep(0.5)
        out["one_core_busy"] = measure(engine, inputs, settings, powers, args.rounds)
    finally:
        busy.terminate()
        busy.join()
    for condition in ("idle", "one_core_busy"):
        r = out[condition]
        d, o = r["default"], r["one"]
        print(
            f"WCT {condition}: default threads {d['median']:.2f} s per image (worst {d['worst']:.2f}; "
            f"powers {d['powers_median']:.3f}, worst {d['powers_worst']:.3f}), one thread "
            f"{o['median']:.2f} s (worst {o['worst']:.2f}; powers {o['powers_median']:.3f}, worst "
            f"{o['powers_worst']:.3f}); default / one = {r['default_over_one']:.2f} "
            f"(others' CPU {r['others_cpu']})"
        )
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="wct,lbfgs", help="which to measure: wct, lbfgs or both")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--lbfgs_iterations", type=int, default=40)
    parser.add_argument("--lbfgs_rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--lbfgs_child", help=argparse.SUPPRESS)  # WIDTH,HEIGHT,THREADS: one run
    args = parser.parse_args(argv)
    if args.lbfgs_child:
        return lbfgs_child(args.lbfgs_child, args.lbfgs_iterations)
    parts = args.parts.split(",")
    if not set(parts) <= {"wct", "lbfgs"}:
        parser.error(f"--parts: wct, lbfgs or both, not {args.parts}")
    if not blas.openblas():
        raise SystemExit("no OpenBLAS found in this process (numpy's BLAS is another): nothing to compare")
    # the file keeps the parts not measured this time (each part records when and where it ran)
    record = json.loads(args.out.read_text()) if args.out.is_file() else {"bench": "blas_threads"}
    for part, measure_part in (("wct", measure_wct), ("lbfgs", measure_lbfgs)):
        if part in parts:
            started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            record[part] = {"started": started, "machine": machine(), **measure_part(args)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
