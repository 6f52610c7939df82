"""WCT at 512x512 with numpy's OpenBLAS on its default threads in the covariance powers, against
one thread (`nst_tf.blas.one_thread`, what `transforms.covariance_power` now holds it to), idle and
with a busy process beside.

Usage (from the repository root):

    .venv/bin/python bench/blas_threads.py     # ~2 min idle

One round is one WCT image (`--method wct`'s engine, five levels, bfloat16 where native, a new
style each image: its ten covariance powers of 64 ... 512 channels, each between TensorFlow's
encoder and decoder passes); the package's decoders where shipped, else random ones of the same
architecture. The peer is the same engine with numpy's default threads in the powers (the code
before `one_thread`); the two sides interleaved, `--rounds` images each, first idle, then while a
child process spins on one core (a training or another worker beside the run). Prints each side's
median and worst seconds per image and in the powers, and the peer's over ours.

Then L-BFGS (`--preset quality`'s optimiser, scipy's L-BFGS-B, whose vector operations on the
image's pixels run on OpenBLAS; `lbfgs.iterates` now holds it to one thread), idle: seconds per
iteration (the median after the first 10) of `--lbfgs_iterations` at 256x192 and at 512x384, numpy's
default threads against one, interleaved, `--lbfgs_rounds` runs each. Writes
bench/results/blas_threads.json.
"""

import bench_step  # first: sets the thread environment before TensorFlow loads  # isort: skip

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import contention  # noqa: E402
import fast_methods  # noqa: E402
import numpy as np  # noqa: E402

from nst_tf import blas, images, precision  # noqa: E402
from nst_tf.methods import base, get  # noqa: E402
from nst_tf.methods.gatys import lbfgs, optimize  # noqa: E402
from nst_tf.methods.gatys.config import PRESETS  # noqa: E402
from nst_tf.methods.wct import transforms  # noqa: E402
from nst_tf.methods.wct.config import WCTSettings  # noqa: E402
from nst_tf.nets import weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "blas_threads.json"
SIZE = 512


def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


class Powers:
    """`transforms.covariance_power` timed, under numpy's default threads or one (`threads`)."""

    def __init__(self):
        self.power, self.seconds, self.threads = transforms.covariance_power, 0.0, "one"

    def __call__(self, *args, **kwargs):
        original, start = blas.one_thread, time.perf_counter()
        if self.threads == "default":
            blas.one_thread = contextlib.nullcontext
        try:
            return self.power(*args, **kwargs)
        finally:
            blas.one_thread = original
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
    config = dataclasses.replace(PRESETS["quality"], iterations=iterations, width=size[0], height=size[1])
    original = lbfgs.blas.one_thread
    if threads == "default":
        lbfgs.blas.one_thread = contextlib.nullcontext
    try:
        ends = [time.perf_counter() for _ in optimize.stylize(content, style, vgg_weights, config)]
    finally:
        lbfgs.blas.one_thread = original
    return statistics.median(np.diff(ends)[10:].tolist())


def measure_lbfgs(vgg_weights, args):
    content = images.load_image(ROOT / "images" / "chelsea.jpg")
    style = images.load_image(ROOT / "images" / "swirls.jpg")
    out = {}
    for size in ((256, 192), (512, 384)):
        seconds = {"default": [], "one": []}
        with contention.Meter() as meter:
            for _ in range(args.lbfgs_rounds):
                for threads in seconds:
                    seconds[threads].append(
                        lbfgs_seconds(content, style, vgg_weights, size, args.lbfgs_iterations, threads)
                    )
        out[f"{size[0]}x{size[1]}"] = {
            "others_cpu": meter.others,
            "seconds_per_iteration": seconds,
            "default_over_one": statistics.median(seconds["default"]) / statistics.median(seconds["one"]),
        }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--lbfgs_iterations", type=int, default=50)
    parser.add_argument("--lbfgs_rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not blas.openblas():
        raise SystemExit("no OpenBLAS found in this process (numpy's BLAS is another): nothing to compare")
    powers = Powers()
    transforms.covariance_power = powers
    vgg_weights = weights.resolve_weights(log=lambda message: None)
    used = precision.resolve("auto")
    content = fast_methods.square(ROOT / "images" / "chelsea.jpg", SIZE)
    style = fast_methods.square(ROOT / "images" / "swirls.jpg", SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        folder, kind = fast_methods.decoder_folder(vgg_weights, tmp)
        settings = WCTSettings(width=SIZE, height=SIZE, decoder=str(folder), precision=used)
        engine = get("wct").engine(settings, vgg_weights)
        inputs = base.prepare_inputs(content, engine.prepare_style([style]), settings)
        for threads in ("default", "one"):  # warm-up
            powers.threads = threads
            engine.stylise(inputs, settings)
        record = {
            "bench": "blas_threads",
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": bench_step.machine_info(),
            "precision": used,
            "decoders": kind,
            "size": [SIZE, SIZE],
            "rounds": args.rounds,
        }
        record["idle"] = measure(engine, inputs, settings, powers, args.rounds)
        busy = multiprocessing.get_context("spawn").Process(target=spin, args=(900,), daemon=True)
        busy.start()
        try:
            time.sleep(0.5)
            record["one_core_busy"] = measure(engine, inputs, settings, powers, args.rounds)
        finally:
            busy.terminate()
            busy.join()
    record["lbfgs"] = measure_lbfgs(vgg_weights, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    for condition in ("idle", "one_core_busy"):
        r = record[condition]
        d, o = r["default"], r["one"]
        print(
            f"{condition:>13}: default threads {d['median']:.2f} s per image (worst {d['worst']:.2f}; "
            f"powers {d['powers_median']:.3f}, worst {d['powers_worst']:.3f}), one thread "
            f"{o['median']:.2f} s (worst {o['worst']:.2f}; powers {o['powers_median']:.3f}, worst "
            f"{o['powers_worst']:.3f}); default / one = {r['default_over_one']:.2f} "
            f"(others' CPU {r['others_cpu']})"
        )
    for size, r in record["lbfgs"].items():
        d, o = (statistics.median(r["seconds_per_iteration"][t]) for t in ("default", "one"))
        print(
            f"L-BFGS {size}: default threads {d:.3f} s an iteration, one thread {o:.3f} s; "
            f"default / one = {r['default_over_one']:.2f} (others' CPU {r['others_cpu']})"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
