"""Time one NST Adam step (VGG-19 forward + input gradient) in nst_tf and its TF, PyTorch and pastiche peers.

Usage (from the repository root, after `bash bench/setup.sh`):

    /work/venv/bin/python bench/bench_step.py            # all peers, 256 and 512 px, 2 + 5 steps
    /work/venv/bin/python bench/bench_step.py --peers ours tf-tutorial --sizes 256 --iterations 3

Every implementation runs 1 + warm-up untimed steps, then the timed ones; the median is reported.
Threads: NST_BENCH_THREADS (default 2) sets OMP/OpenBLAS/MKL threads, TF's intra- and inter-op
pools, and `torch.set_num_threads` in the torch worker. See bench/README.md.
"""

import os

THREADS = os.environ.get("NST_BENCH_THREADS", "2")
THREAD_ENV = {name: THREADS for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
os.environ.update(THREAD_ENV)  # before numpy and TensorFlow load their thread pools
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import contention  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import timing  # noqa: E402
from PIL import Image  # noqa: E402

import nst_tf  # noqa: E402
from nst_tf import images  # noqa: E402
from nst_tf.methods.gatys import optimize  # noqa: E402
from nst_tf.nets import layers, weights  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED_IMAGES = ROOT.parent / "shared" / "images"
DEFAULT_OUT = BENCH / "results" / "step.json"
DEFAULT_TORCH_PYTHON = BENCH / ".venv-torch" / "bin" / "python"

# One step = forward to the deepest loss layer + the gradient with respect to the input image.
# Backward through a conv to its *input* costs the same FLOPs as its forward (a transposed conv);
# the weight-gradient convs, the third pass behind the usual "training step = 3x forward", are never
# run here (TF prunes the unused Conv2DBackpropFilter in the tf.function graph; torch skips it for
# requires_grad=False weights). So a step is counted as 2x the forward FLOPs (convs and Gram matrices).
STEP_FACTOR = 2
MATMUL_N = 4096
STYLE_5 = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")


@dataclasses.dataclass(frozen=True)
class Impl:
    """One implementation under test.

    Attributes:
      name: key used on the command line and in the JSON.
      label: human-readable name.
      side: "tf" (timed in this process) or "torch" (timed in the torch worker).
      deepest: deepest VGG-19 conv its loss needs (the forward stops there).
      style_layers: convs whose Gram matrices it computes.
      note: what it is, in one line.
      precision: the convolutions' number format ("float32" or "bfloat16").
    """

    name: str
    label: str
    side: str
    deepest: str
    style_layers: tuple
    note: str
    precision: str = "float32"


def _ours(precision="float32"):
    config = optimize.Config()
    content = tuple(name for name, _ in config.content_layers)
    style = tuple(name for name, _ in config.style_layers)
    deepest = max(content + style, key=layers.CONV_LAYERS.index)
    note = (
        f"nst_tf.methods.gatys.optimize.stylize, Config defaults: content {', '.join(content)}, "
        f"style {', '.join(style)}, {config.pooling} pool, {config.optimizer}, precision {precision}"
    )
    if precision == "float32":
        return Impl("ours", "nst_tf (ours)", "tf", deepest, style, note)
    return Impl("ours-bf16", "nst_tf (ours), bfloat16", "tf", deepest, style, note, precision)


IMPLS = {
    impl.name: impl
    for impl in (
        _ours(),
        _ours("bfloat16"),
        Impl(
            "tf-tutorial",
            "TF tutorial",
            "tf",
            "conv5_2",
            STYLE_5,
            "tensorflow.org NST tutorial: Keras VGG19, content block5_conv2, @tf.function",
        ),
        Impl(
            "tf-tutorial-xla",
            "TF tutorial + XLA",
            "tf",
            "conv5_2",
            STYLE_5,
            "the same with @tf.function(jit_compile=True)",
        ),
        Impl(
            "torch-tutorial",
            "PyTorch tutorial",
            "torch",
            "conv3_1",
            ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"),
            "pytorch.org NST tutorial as written (content conv_4, style conv_1..5), Adam for LBFGS",
        ),
        Impl(
            "torch-tutorial-deep",
            "PyTorch tutorial, deep layers",
            "torch",
            "conv5_1",
            STYLE_5,
            "the same code with the assignment's layers (content conv4_2, style conv1_1..conv5_1)",
        ),
        Impl(
            "pastiche",
            "pastiche 1.6.0",
            "torch",
            "conv5_1",
            STYLE_5,
            "pastiche's PasticheArtist (own VGG-19 and losses), optimizer='adam', CPU",
        ),
    )
}


def log(message):
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- FLOPs ----------------------------------------------------------------------------------


def conv_shapes(width, height):
    """(layer, h, w, c_in, c_out) of each VGG-19 conv for a width x height input (2x2/2 SAME pools)."""
    shapes, h, w, c_in = [], height, width, 3
    for block, n, c_out in layers.BLOCKS:
        if block > 1:
            h, w = -(-h // 2), -(-w // 2)
        for conv in range(1, n + 1):
            shapes.append((f"conv{block}_{conv}", h, w, c_in, c_out))
            c_in = c_out
    return shapes


def forward_flops(width, height, deepest="conv5_1"):
    """FLOPs of the 3x3 convs from conv1_1 to `deepest`: sum of 2*9*c_in*c_out*h*w."""
    total = 0
    for name, h, w, c_in, c_out in conv_shapes(width, height):
        total += 2 * 9 * c_in * c_out * h * w
        if name == deepest:
            return total
    raise ValueError(f"unknown conv layer {deepest!r}")


def gram_flops(width, height, style_layers):
    """FLOPs of the Gram matrices A A^T at `style_layers`: 2*c^2*h*w each."""
    return sum(2 * c * c * h * w for name, h, w, _, c in conv_shapes(width, height) if name in style_layers)


def step_flops(impl, width, height):
    """FLOPs counted for one optimisation step of `impl` (see STEP_FACTOR)."""
    forward = forward_flops(width, height, impl.deepest) + gram_flops(width, height, impl.style_layers)
    return STEP_FACTOR * forward


# --- machine --------------------------------------------------------------------------------


def machine_info():
    """What the numbers were measured on."""
    import keras

    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "cpu_model": timing.cpuinfo_field("model name") or platform.processor() or "unknown",
        "cpu_mhz": timing.cpuinfo_field("cpu MHz"),
        "cpu_simd": [
            f for f in ("avx2", "fma", "avx512f", "avx512_bf16") if f in timing.cpuinfo_field("flags").split()
        ],
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "nst_tf": nst_tf.__version__,
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "threads": int(THREADS),
    }


def _best_seconds(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peaks(n=MATMUL_N, repeats=5):
    """Best GFLOP/s of an n x n float32 matmul in numpy and in TensorFlow (one warm-up each)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), np.float32), rng.random((n, n), np.float32)
    flops = 2 * n**3
    peaks = {"numpy": flops / _best_seconds(lambda: a @ b, repeats) / 1e9}
    ta, tb = tf.constant(a), tf.constant(b)
    # Eager ops on the CPU return when done, so no fetch is needed (it would add a 64 MB copy).
    peaks["tensorflow"] = flops / _best_seconds(lambda: tf.linalg.matmul(ta, tb), repeats) / 1e9
    return peaks


CONV_PEAK_SHAPES = ((8, 64, 64, 256, 256), (1, 96, 128, 256, 256))  # (n, h, w, in, out), 3x3 SAME


def conv_peaks(repeats=5):
    """Best GFLOP/s of a 3x3 convolution (forward or input gradient) per precision, in TensorFlow.

    The reference for "of conv peak": what the convolutions a step is made of reach alone on
    this machine in this run, in float32 and in bfloat16 (oneDNN's kernels: AMX where present).
    """
    rng = np.random.default_rng(0)
    peaks = {}
    for dtype in (tf.float32, tf.bfloat16):
        best = 0.0
        for n, h, w, c_in, c_out in CONV_PEAK_SHAPES:
            x = tf.cast(rng.standard_normal((n, h, w, c_in)), dtype)
            k = tf.cast(rng.standard_normal((3, 3, c_in, c_out)) * 0.05, dtype)
            dy = tf.cast(rng.standard_normal((n, h, w, c_out)), dtype)
            forward = tf.function(lambda x=x, k=k: tf.nn.conv2d(x, k, 1, "SAME"))
            backward = tf.function(
                lambda dy=dy, k=k, shape=x.shape: tf.nn.conv2d_transpose(dy, k, shape, 1, "SAME")
            )
            flops = 2 * 9 * c_in * c_out * n * h * w
            for fn in (forward, backward):
                best = max(best, flops / _best_seconds(lambda fn=fn: fn().numpy(), repeats) / 1e9)
        peaks[dtype.name] = best
    return peaks


# --- inputs ---------------------------------------------------------------------------------


def working_size(image, long_side):
    """(width, height) with the image's long side at `long_side` and its aspect kept."""
    h, w = image.shape[:2]
    if w >= h:
        return long_side, round(long_side * h / w)
    return round(long_side * w / h), long_side


def load_pairs(content_path, style_path, long_sides):
    """{(width, height): (content, style)} uint8 RGB, both at exactly that size (style centre-cropped)."""
    content, style = images.load_image(content_path), images.load_image(style_path)
    pairs = {}
    for side in long_sides:
        width, height = working_size(content, side)
        pairs[(width, height)] = (
            images.resize_to(content, width, height),
            images.resize_to(style, width, height),
        )
    return pairs


# --- TF side --------------------------------------------------------------------------------


def time_ours(content, style, vgg_weights, warmup, iterations, precision="float32"):
    """Per-step seconds of nst_tf's own loop, from the `elapsed` of successive `Progress`.

    Step 0 (tracing, and a save step) and the last step (a save step: an extra forward pass
    and an image fetch) are run but not timed; `warmup` steps after step 0 are not timed either.
    """
    height, width = content.shape[:2]
    n = 1 + warmup + iterations + 1
    config = optimize.Config(width=width, height=height, iterations=n, save_every=10**9, precision=precision)
    elapsed = [progress.elapsed for progress in optimize.stylize(content, style, vgg_weights, config)]
    per_step = np.diff(elapsed)  # per_step[k] is step k + 1
    return [float(t) for t in per_step[warmup : warmup + iterations]]


def time_tf_impl(name, content, style, vgg_weights, warmup, iterations):
    """Per-step seconds of one TF implementation at the images' size."""
    if name.startswith("ours"):
        return time_ours(content, style, vgg_weights, warmup, iterations, IMPLS[name].precision)
    import tf_tutorial

    step = tf_tutorial.make_step(content, style, vgg_weights.layers, jit_compile=name.endswith("xla"))
    return timing.time_steps(step, 1 + warmup, iterations)


def run_tf_side(names, pairs, vgg_weights, args):
    """[(impl name, width, height, times, others' CPU share)] for the TF implementations in `names`."""
    runs = []
    for name in names:
        for (width, height), (content, style) in pairs.items():
            log(f"{name} {width}x{height}: 1 + {args.warmup} warm-up + {args.iterations} timed steps")
            with contention.Meter() as meter:
                times = time_tf_impl(name, content, style, vgg_weights, args.warmup, args.iterations)
            median_ms = statistics.median(times) * 1e3
            log(f"{name} {width}x{height}: median {median_ms:.0f} ms; others' CPU share {meter.others}")
            runs.append((name, width, height, times, meter.others))
            tf.keras.backend.clear_session()
            gc.collect()
    return runs


# --- torch side -----------------------------------------------------------------------------


def write_torch_inputs(folder, layers, pairs):
    """weights.npz in torch layout (out, in, kh, kw) and content/style PNGs at each size."""
    arrays = {}
    for name, (kernel, bias) in layers.items():
        arrays[f"{name}_W"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
        arrays[f"{name}_b"] = bias
    np.savez(folder / "weights.npz", **arrays)
    for (width, height), (content, style) in pairs.items():
        Image.fromarray(content).save(folder / f"content_{width}x{height}.png")
        Image.fromarray(style).save(folder / f"style_{width}x{height}.png")


def run_torch_side(names, pairs, vgg_weights, args):
    """Run torch_peers.py in the torch interpreter; return (runs like run_tf_side, its JSON record)."""
    python = Path(args.torch_python)
    with tempfile.TemporaryDirectory(prefix="nst-bench-") as tmp:
        folder = Path(tmp)
        write_torch_inputs(folder, vgg_weights.layers, pairs)
        out = folder / "torch.json"
        sizes = [f"{w}x{h}" for w, h in pairs]
        counts = ["--warmup", str(1 + args.warmup), "--iterations", str(args.iterations)]
        cmd = [
            str(python),
            str(BENCH / "torch_peers.py"),
            "--folder",
            tmp,
            "--out",
            str(out),
            "--peak",
            "--sizes",
            *sizes,
            "--peers",
            *names,
            *counts,
            "--threads",
            THREADS,
        ]
        subprocess.run(cmd, check=True, env={**os.environ, **THREAD_ENV}, stdin=subprocess.DEVNULL)
        record = json.loads(out.read_text())
    runs = [
        (r["impl"], r["width"], r["height"], r["times_s"], r["others_cpu"]) for r in record.pop("results")
    ]
    return runs, record


# --- report ---------------------------------------------------------------------------------


def summarise(runs, peak, conv_peak):
    """One result row per run: GFLOP/s, share of `peak` and of the conv peak of its precision,
    and the time ratios ours/peer and ours-bf16/peer."""
    rows = []
    for name, width, height, times, others in runs:
        impl, ms = IMPLS[name], statistics.median(times) * 1e3
        gflop = step_flops(impl, width, height) / 1e9
        gflops = gflop / ms * 1e3
        rows.append(
            {
                "impl": name,
                "label": impl.label,
                "width": width,
                "height": height,
                "ms_median": round(ms, 1),
                "ms_min": round(min(times) * 1e3, 1),
                "ms_all": [round(t * 1e3, 1) for t in times],
                "gflop_per_step": round(gflop, 2),
                "gflops": round(gflops, 1),
                "frac_peak": round(gflops / peak, 3),
                "precision": impl.precision,
                "frac_conv_peak": round(gflops / conv_peak[impl.precision], 3),
                "others_cpu": others,
            }
        )
    for mine, key in (("ours", "ours_over_peer"), ("ours-bf16", "bf16_over_peer")):
        ours = {(r["width"], r["height"]): r["ms_median"] for r in rows if r["impl"] == mine}
        for row in rows:
            base = ours.get((row["width"], row["height"]))
            row[key] = round(base / row["ms_median"], 2) if base else None
    return rows


def table(rows):
    """The rows as a Markdown table, largest size first."""
    head = (
        "| size | implementation | GFLOP/step | ms/iter | GFLOP/s | of peak | of conv peak | "
        "ours/peer time | ours bf16/peer time | others' CPU |"
    )
    lines = [head, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in sorted(rows, key=lambda r: (-r["width"] * r["height"], list(IMPLS).index(r["impl"]))):
        ratios = ["-" if r[k] is None else f"{r[k]:.2f}" for k in ("ours_over_peer", "bf16_over_peer")]
        others = "?" if r["others_cpu"] is None else f"{r['others_cpu']:.0%}"
        lines.append(
            f"| {r['width']}x{r['height']} | {r['label']} | {r['gflop_per_step']:.1f} | {r['ms_median']:.0f} "
            f"| {r['gflops']:.1f} | {r['frac_peak']:.0%} | {r['frac_conv_peak']:.0%} ({r['precision']}) "
            f"| {ratios[0]} | {ratios[1]} | {others} |"
        )
    return "\n".join(lines)


def flop_model(pairs):
    """The FLOP counts used, per size, for the JSON."""
    return {
        "step_factor": STEP_FACTOR,
        "why": "a step is forward + input-gradient backward; no weight gradients are computed",
        "forward_gflop_to_conv5_1": {f"{w}x{h}": round(forward_flops(w, h) / 1e9, 2) for w, h in pairs},
        "per_impl": {
            name: {"deepest": impl.deepest, "gram_layers": list(impl.style_layers)}
            for name, impl in IMPLS.items()
        },
    }


def write_json(path, record):
    """Write `record` to `path` atomically (a .tmp file renamed into place), flat lists on one line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(record, indent=1)
    text = re.sub(r"\[\s+([^\[\]{}]*?)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


# --- main -----------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="long sides in pixels")
    parser.add_argument("--peers", nargs="+", choices=list(IMPLS), default=list(IMPLS), help="what to time")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps after the first one")
    parser.add_argument("--iterations", type=int, default=5, help="timed steps; the median is reported")
    parser.add_argument("--content", default=str(SHARED_IMAGES / "tubingen.jpg"))
    parser.add_argument("--style", default=str(SHARED_IMAGES / "starry_night.jpg"))
    parser.add_argument(
        "--torch-python",
        default=os.environ.get("NST_BENCH_TORCH_PYTHON", str(DEFAULT_TORCH_PYTHON)),
        help="python with torch and pastiche (default: $NST_BENCH_TORCH_PYTHON, else bench/.venv-torch)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0:
        parser.error("--iterations must be >= 1 and --warmup >= 0")
    torch_peers = any(IMPLS[name].side == "torch" for name in args.peers)
    if torch_peers and not Path(args.torch_python).is_file():
        parser.error(f"no torch python at {args.torch_python}: run `bash bench/setup.sh` first")
    return args


def configure_tf_threads():
    tf.config.threading.set_intra_op_parallelism_threads(int(THREADS))
    tf.config.threading.set_inter_op_parallelism_threads(int(THREADS))


def measure(args):
    """Time everything asked for: (matmul peaks, [(impl, width, height, times)], torch worker record)."""
    pairs = load_pairs(args.content, args.style, sorted(args.sizes))
    vgg_weights = weights.embedded_default(log=log)
    log(f"weights: {vgg_weights.source} {vgg_weights.path}")
    peaks = matmul_peaks()
    log(f"matmul {MATMUL_N}: numpy {peaks['numpy']:.1f}, TF {peaks['tensorflow']:.1f} GFLOP/s")
    convs = conv_peaks()
    log(f"3x3 conv peak: float32 {convs['float32']:.1f}, bfloat16 {convs['bfloat16']:.1f} GFLOP/s")
    runs = run_tf_side([n for n in args.peers if IMPLS[n].side == "tf"], pairs, vgg_weights, args)
    torch_names = [n for n in args.peers if IMPLS[n].side == "torch"]
    torch_record = {}
    if torch_names:
        torch_runs, torch_record = run_torch_side(torch_names, pairs, vgg_weights, args)
        runs += torch_runs
    if "peak_torch_gflops" in torch_record:
        peaks["torch"] = torch_record.pop("peak_torch_gflops")
    return peaks, convs, runs, torch_record, pairs, vgg_weights.source


def build_record(args, measured, started, load_before, others_cpu):
    """The JSON document: machine, settings, peaks, FLOP model and one row per run."""
    peaks, convs, runs, torch_record, pairs, source = measured
    peak = max(peaks.values())  # numpy, TensorFlow and, when the torch worker ran, torch
    machine = {
        **machine_info(),
        "torch": torch_record.get("torch_version"),
        "pastiche": torch_record.get("pastiche_version"),
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "others_cpu_whole_run": others_cpu,
    }
    settings = {
        "warmup": args.warmup,
        "iterations": args.iterations,
        "untimed_first_step": True,
        "content": Path(args.content).name,
        "style": Path(args.style).name,
        "weights": source,
    }
    return {
        "benchmark": "one NST Adam step: VGG-19 forward + gradient w.r.t. the input image",
        "started_utc": started,
        "machine": machine,
        "settings": settings,
        "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()},
        "peak_used": round(peak, 1),
        "conv_peak_gflops": {k: round(v, 1) for k, v in convs.items()},
        "flops": flop_model(pairs),
        "impls": {name: impl.note for name, impl in IMPLS.items() if name in args.peers},
        "results": summarise(runs, peak, convs),
    }


def print_report(record):
    peaks = ", ".join(f"{k} {v:.1f}" for k, v in record["matmul_peak_gflops"].items())
    machine = record["machine"]
    print(f"\nmatmul {MATMUL_N}x{MATMUL_N} float32 GFLOP/s (best of 5): {peaks}; 'of peak' is of the best")
    convs = ", ".join(f"{k} {v:.1f}" for k, v in record["conv_peak_gflops"].items())
    print(f"3x3 convolution peak GFLOP/s (best of 5, forward or input gradient): {convs}")
    print(
        f"{machine['nproc']} x {machine['cpu_model']}, threads {machine['threads']}, load average "
        f"{machine['loadavg_before'][0]:.2f} before, {machine['loadavg_after'][0]:.2f} after; "
        f"other processes took {machine['others_cpu_whole_run']} of the CPU over the run\n"
    )
    print(table(record["results"]))


def main(argv=None):
    args = parse_args(argv)
    configure_tf_threads()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load_before = os.getloadavg()
    with contention.Meter() as meter:
        measured = measure(args)
    record = build_record(args, measured, started, load_before, meter.others)
    write_json(args.out, record)
    print_report(record)
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
