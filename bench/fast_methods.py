"""Per-image time of the fast methods at 512x512 after warm-up: nst_tf against PyTorch's same network.

Usage (from the repository root, after `bash bench/setup.sh`):

    .venv/bin/python bench/fast_methods.py                  # WCT, 5 levels, 512x512, ~3 min idle
    .venv/bin/python bench/fast_methods.py --method adain   # AdaIN, 512x512, ~1 min idle
    .venv/bin/python bench/fast_methods.py --size 1024 --iterations 2

Ours is `--method wct`'s engine (nst_tf.methods.wct.method.Engine.stylise: the five levels'
encodings, whitening and colouring, decodings), in each precision of `--precisions` (auto:
bfloat16 where native), with the package's trained decoders where they are all shipped, else
random ones of the same architecture (the time is the same). The peer (`torch_wct.py`, run with
the torch interpreter) is the reference ports' layout in PyTorch: float32, CPU, random decoder
weights, the same VGG-19 weights, float64 eigendecompositions. Each side runs 1 + warm-up untimed
images, then the timed ones; the median is reported, with the share of the CPU other processes
took meanwhile. Ours is timed twice: encoding the style every image, as the peer does, and with the
style's statistics cached by the engine (what a batch of contents in one style gets).
`--method adain`: its engine (one relu4_1 encoding per image and style, AdaIN, one
decoding) against the same in PyTorch (the reference code's AdaIN). Results: bench/results/fast.json
(WCT), bench/results/fast_adain.json (AdaIN).
"""

import bench_step  # first: sets the thread environment before TensorFlow loads  # isort: skip

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import contention  # noqa: E402
import numpy as np  # noqa: E402
import timing  # noqa: E402
from PIL import Image  # noqa: E402

from nst_tf import images, precision  # noqa: E402
from nst_tf.methods import base, get  # noqa: E402
from nst_tf.methods.adain.config import DECODER_FILE as ADAIN_FILE  # noqa: E402
from nst_tf.methods.adain.config import DEFAULT_DECODER_DIR as ADAIN_DIR  # noqa: E402
from nst_tf.methods.adain.config import AdaINSettings  # noqa: E402
from nst_tf.methods.wct.config import DEFAULT_DECODER_DIR, ENCODER_POOLING, WCTSettings  # noqa: E402
from nst_tf.nets import decoder as decoders  # noqa: E402
from nst_tf.nets import weights  # noqa: E402

BENCH = Path(__file__).resolve().parent
DEFAULT_OUT = {"wct": BENCH / "results" / "fast.json", "adain": BENCH / "results" / "fast_adain.json"}
SETTINGS = {"wct": WCTSettings, "adain": AdaINSettings}
TORCH_WORKER = BENCH / "torch_wct.py"


def log(message):
    print(f"[fast] {message}", file=sys.stderr, flush=True)


def square(path, size):
    return images.resize_to(images.load_image(path), size, size)


def decoder_folder(vgg_weights, tmp, method="wct"):
    """The package's decoders if all are shipped (WCT's five, AdaIN's one), else random ones of the
    same architecture written to `tmp`."""
    encoder = {"source": vgg_weights.source, "path": str(vgg_weights.path), "sha256": vgg_weights.sha256}
    encoder["pooling"] = ENCODER_POOLING
    if method == "adain":
        if (ADAIN_DIR / ADAIN_FILE).is_file():
            return ADAIN_DIR, "trained (the package's)"
        model = decoders.build_decoder(4, decoders.widths_of(vgg_weights.layers))
        decoders.write_decoder(model, Path(tmp) / ADAIN_FILE, {"method": "adain", "encoder": encoder})
        return Path(tmp), "random (same architecture)"
    if all((DEFAULT_DECODER_DIR / decoders.decoder_file(lv)).is_file() for lv in decoders.LEVELS):
        return DEFAULT_DECODER_DIR, "trained (the package's)"
    for level in decoders.LEVELS:
        model = decoders.build_decoder(level, decoders.widths_of(vgg_weights.layers))
        decoders.write_decoder(model, Path(tmp) / decoders.decoder_file(level), {"encoder": encoder})
    return Path(tmp), "random (same architecture)"


def time_ours(content, style, vgg_weights, folder, used, args):
    settings = SETTINGS[args.method](width=args.size, height=args.size, decoder=str(folder), precision=used)
    engine = get(args.method).engine(settings, vgg_weights)
    inputs = base.prepare_inputs(content, engine.prepare_style([style]), settings)
    runs = []
    for cached in (False, True):  # a new style every image (as the peer), or one style for a batch

        def stylise(cached=cached):
            if not cached:
                engine.style_cache.clear()
            return engine.stylise(inputs, settings)

        with contention.Meter() as meter:
            times = timing.time_steps(stylise, 1 + args.warmup, args.iterations)
        runs.append(
            {
                "peer": f"nst_tf-{args.method} ({used}{', style cached' if cached else ''})",
                "style_cached": cached,
                "seconds": times,
                "median": statistics.median(times),
                "others_cpu": meter.others,
            }
        )
    return runs


def time_torch(content, style, vgg_weights, args):
    with tempfile.TemporaryDirectory() as tmp:
        arrays = {}
        for name, (kernel, bias) in vgg_weights.layers.items():
            arrays[f"{name}/w"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))  # (out, in, kh, kw)
            arrays[f"{name}/b"] = bias
        np.savez(Path(tmp) / "weights.npz", **arrays)
        Image.fromarray(content).save(Path(tmp) / "content.png")
        Image.fromarray(style).save(Path(tmp) / "style.png")
        out = Path(tmp) / "torch.json"
        cmd = [args.torch_python, str(TORCH_WORKER), "--inputs", tmp, "--out", str(out)]
        cmd += [
            "--warmup",
            str(args.warmup),
            "--iterations",
            str(args.iterations),
            "--threads",
            bench_step.THREADS,
            "--method",
            args.method,
        ]
        env = {**os.environ, **bench_step.THREAD_ENV, "PYTHONPATH": str(BENCH)}
        with contention.Meter() as meter:
            subprocess.run(cmd, check=True, env=env, stdin=subprocess.DEVNULL)
        return {**json.loads(out.read_text()), "others_cpu": meter.others}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="wct", choices=("wct", "adain"))
    parser.add_argument("--size", type=int, default=512, help="content and style side (square)")
    parser.add_argument(
        "--precisions", nargs="+", default=["auto", "float32"], choices=["auto", "float32", "bfloat16"]
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed images after the first")
    parser.add_argument("--iterations", type=int, default=3, help="timed images; the median is reported")
    parser.add_argument("--content", default=str(bench_step.SHARED_IMAGES / "tubingen.jpg"))
    parser.add_argument("--style", default=str(bench_step.SHARED_IMAGES / "starry_night.jpg"))
    parser.add_argument(
        "--torch-python",
        default=os.environ.get("NST_BENCH_TORCH_PYTHON", str(bench_step.DEFAULT_TORCH_PYTHON)),
        help="python with torch (default: $NST_BENCH_TORCH_PYTHON, else bench/.venv-torch)",
    )
    parser.add_argument("--out", type=Path, help="JSON results file (default: per method, bench/results/)")
    args = parser.parse_args(argv)
    args.out = args.out or DEFAULT_OUT[args.method]
    if args.iterations < 1 or args.warmup < 0 or args.size < 64:
        parser.error("--iterations must be >= 1, --warmup >= 0 and --size >= 64")
    if not Path(args.torch_python).is_file():
        parser.error(f"no torch python at {args.torch_python}: run `bash bench/setup.sh` first")
    return args


def main(argv=None):
    args = parse_args(argv)
    bench_step.configure_tf_threads()
    started, load_before = datetime.datetime.now(datetime.timezone.utc), os.getloadavg()[0]
    vgg_weights = weights.embedded_default(log=log)
    content, style = square(args.content, args.size), square(args.style, args.size)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, kind = decoder_folder(vgg_weights, tmp, args.method)
        for name in args.precisions:
            used = precision.resolve(name)
            log(f"ours, {name} -> {used}, decoders {kind}")
            runs += [
                {**run, "precision": name}
                for run in time_ours(content, style, vgg_weights, folder, used, args)
            ]
    log("torch peer")
    peer = time_torch(content, style, vgg_weights, args)
    runs.append(peer)
    for run in runs:
        run["ratio_to_torch"] = run["median"] / peer["median"]
    record = {
        "bench": "fast_methods",
        "method": args.method,
        "started": started.isoformat(timespec="seconds"),
        "size": [args.size, args.size],
        "levels": "5,4,3,2,1" if args.method == "wct" else "4 (AdaIN at relu4_1)",
        "decoders": kind,
        "load_average_before": load_before,
        "machine": bench_step.machine_info(),
        "precision_reason": precision.describe("auto")[1],
        "runs": runs,
    }
    bench_step.write_json(args.out, record)
    title = "WCT, 5 levels" if args.method == "wct" else "AdaIN"
    print(f"| {title}, {args.size}x{args.size} | median s/image | x torch | others' CPU share |")
    print("| --- | --- | --- | --- |")
    for run in runs:
        others = run["others_cpu"] or 0
        print(f"| {run['peer']} | {run['median']:.2f} | {run['ratio_to_torch']:.2f} | {others:.2f} |")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
