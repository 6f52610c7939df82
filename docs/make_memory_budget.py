"""Peak memory of a 4096x3072 run under --max_memory 8, in float32 and bfloat16; a section of highres.md.

    .venv/bin/python docs/make_memory_budget.py       # about 30 minutes on 2 cores

Each run is the command line a user would type (Tübingen / The Starry Night, one scale, 2 Adam
iterations), in a fresh process; its peak resident size (ru_maxrss, in run.json, and the
maximum of /proc/<pid>/status VmRSS sampled every 0.25 s) is compared with the budget. The
section between the `<!-- budget -->` markers of docs/highres.md is replaced (make_highres.py
keeps it when it re-renders the page); the numbers go to docs/highres/budget.json.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "docs"))
from make_highres import watch  # noqa: E402

START, END = "<!-- budget -->", "<!-- /budget -->"
PRECISIONS = ("float32", "bfloat16")
HEADER = (
    "| precision | tile core (px) | optimisation (min) | peak RSS (GiB, ru_maxrss) | peak RSS sampled (GiB) "
    "| budget (GiB) | within |"
)


def run_one(args, precision, folder):
    out = Path(folder) / precision
    command = [
        sys.executable, "-m", "nst_tf.run", "--content", str(args.images / "tubingen.jpg"),
        "--style", str(args.images / "starry_night.jpg"), "--width", str(args.width),
        "--height", str(args.height), "--iterations", str(args.iterations), "--save_every", "100",
        "--max_memory", str(args.max_memory), "--precision", precision, "--output_dir", str(out),
    ]  # fmt: skip
    tick = time.perf_counter()
    with tempfile.TemporaryFile("w+") as output:  # a file, not a pipe: nothing reads it while it runs
        proc = subprocess.Popen(command, cwd=REPO, stdout=output, stderr=subprocess.STDOUT, text=True)
        sampled, _ = watch(proc, limit_mib=float("inf"))  # make_highres's sampler of /proc/<pid>/status
        output.seek(0)
        log = output.read()
    if proc.returncode:
        raise SystemExit(f"{precision} run failed:\n{log[-3000:]}")
    record = json.loads((out / "run.json").read_text())
    scale = record["scales"][0]
    return dict(
        precision=precision,
        command=" ".join(["python", "-m", "nst_tf.run", *command[3:-2]]),
        tile=scale["tile"],
        seconds=scale["seconds"],
        wall_s=time.perf_counter() - tick,
        peak_rss_mib=scale["peak_rss_mb"],
        sampled_peak_rss_mib=sampled,
        budget_mib=args.max_memory * 1024,
        final_costs=record.get("final_costs"),
    )


def section(record):
    rows = [
        f"| {r['precision']} | {r['tile']} | {r['seconds'] / 60:.1f} | {r['peak_rss_mib'] / 1024:.2f} "
        f"| {r['sampled_peak_rss_mib'] / 1024:.2f} | {r['budget_mib'] / 1024:.0f} | "
        f"{'yes' if r['peak_rss_mib'] <= r['budget_mib'] else '**no**'} |"
        for r in record["runs"]
    ]
    w, h = record["size"]
    return f"""{START}
## The whole process within `--max_memory`, float32 and bfloat16

Made by `python docs/make_memory_budget.py` on {record["date"]} ({record["machine"]}). Before, the
budget counted only the activations, and `--width 4096 --height 3072 --iterations 2 --max_memory 8`
peaked at 9.6 GiB resident. `memory.tile_core` now counts what the process already holds
(`resident_bytes()`: Python, TensorFlow, the weights, the images), the whole-image arrays per pixel
and the tile's own peak per pixel, per precision (`BYTES_PER_PIXEL`, `TILE_BYTES_PER_PIXEL`,
`WHOLE_IMAGE_BYTES_PER_PIXEL`, `STEP_OVERHEAD`, measured by `bench/memory.py`), and takes the largest
tile that fits. (The sections above were measured before this change, with the single estimate
`BYTES_PER_PIXEL = 4096` for the activations alone; their tile sizes came from it.)

{w}x{h}, one scale, {record["iterations"]} Adam iterations, Tübingen / The Starry Night (the minutes are
wall time on a machine that was running other jobs too, the float32 run more so: memory is the point
here; `bench/` measures speed):

{HEADER}
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

`tests/test_precision.py::test_the_whole_process_stays_within_max_memory` checks the same at a
size CI affords (768x576, `--max_memory 1.75`, both precisions).
{END}"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=REPO.parent / "shared" / "images")
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--height", type=int, default=3072)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--max_memory", type=float, default=8.0)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "highres.md")
    parser.add_argument("--render", action="store_true", help="only rewrite the section from budget.json")
    args = parser.parse_args()
    results = args.doc.parent / "highres" / "budget.json"
    if args.render:
        return write_section(args.doc, json.loads(results.read_text()))
    sys.path.insert(0, str(REPO))
    from nst_tf import precision

    with tempfile.TemporaryDirectory() as folder:
        runs = []
        for name in args.precisions:
            runs.append(run_one(args, name, folder))
            print(json.dumps(runs[-1]), flush=True)
    record = dict(
        date=datetime.date.today().isoformat(),
        machine=f"{precision.cpu_info()[0]}, {os.cpu_count()} cores",
        size=[args.width, args.height],
        iterations=args.iterations,
        runs=runs,
    )
    results.write_text(json.dumps(record, indent=1) + "\n")
    write_section(args.doc, record)


def write_section(doc, record):
    """Replace the section between the markers of `doc` (or put it before the machine section)."""
    text = doc.read_text()
    if START in text and END in text:
        before, rest = text.split(START, 1)
        text = before + section(record) + rest.split(END, 1)[1]
    else:
        marker = "## Machine, load and commands"
        text = text.replace(marker, section(record) + "\n\n" + marker, 1)
    doc.write_text(text)
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
