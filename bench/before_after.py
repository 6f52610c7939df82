"""The Adam step of `nst_tf.stylize` in this tree against another revision's, measured in one run.

Usage (from the repository root):

    .venv/bin/python bench/before_after.py --rev 7a95851        # the revision before a refactor
    .venv/bin/python bench/before_after.py --rev HEAD~3 --size 512 --rounds 3

The other revision is checked out into a temporary git worktree. Both sides run in fresh child
processes, alternately (before, after, before, after, ...), so a change in the machine's load hits
both alike; each child times `--iterations` steps after `--warmup` untimed ones with the same
settings (the assignment's, at `--size` px long side, the default weights) through the public
API both revisions share (`nst_tf.stylize`, `nst_tf.Config`, `nst_tf.resolve_weights`). Prints
the median step of each side and their ratio; writes bench/results/before_after.json.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import timing

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SHARED_IMAGES = ROOT.parent / "shared" / "images"

CHILD = r"""
import json, sys, os
sys.path.insert(0, sys.argv[1])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from PIL import Image
import nst_tf
from nst_tf import images
content, style = images.load_image(sys.argv[2]), images.load_image(sys.argv[3])
long_side, warmup, n = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
h, w = content.shape[:2]
width, height = (long_side, round(long_side * h / w)) if w >= h else (round(long_side * w / h), long_side)
config = nst_tf.Config(width=width, height=height, iterations=1 + warmup + n, save_every=10**9)
vgg = nst_tf.resolve_weights(log=lambda m: None)
elapsed = [p.elapsed for p in nst_tf.stylize(content, style, vgg, config)]
steps = [b - a for a, b in zip(elapsed, elapsed[1:])][warmup:]
print(json.dumps({"file": nst_tf.__file__, "size": [width, height], "steps": steps}))
"""


def run_side(tree, args):
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(tree)}
    command = [sys.executable, "-c", CHILD, str(tree), args.content, args.style]
    command += [str(args.size), str(args.warmup), str(args.iterations)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", required=True, help="the revision to compare with (git rev)")
    parser.add_argument("--size", type=int, default=512, help="long side in pixels")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="children per side, alternating")
    parser.add_argument("--content", default=str(SHARED_IMAGES / "tubingen.jpg"))
    parser.add_argument("--style", default=str(SHARED_IMAGES / "starry_night.jpg"))
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "before_after.json")
    args = parser.parse_args(argv)
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], capture_output=True, text=True, cwd=ROOT)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    with tempfile.TemporaryDirectory() as folder:
        before_tree = Path(folder) / "before"
        add = ["git", "worktree", "add", "-q", "--detach", str(before_tree), args.rev]
        subprocess.run(add, cwd=ROOT, check=True)
        try:
            sides = {"before": [], "after": []}
            for k in range(args.rounds):
                for name, tree in (("before", before_tree), ("after", ROOT)):
                    result = run_side(tree, args)
                    sides[name] += result["steps"]
                    median = statistics.median(result["steps"])
                    print(f"round {k + 1} {name}: median {median:.3f} s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(before_tree)], cwd=ROOT)
    before, after = (statistics.median(sides[name]) for name in ("before", "after"))
    record = {
        "benchmark": "nst_tf.stylize Adam step: this tree against another revision, alternating processes",
        "date": datetime.date.today().isoformat(),
        "machine": f"{timing.cpuinfo_field('model name')}, {os.cpu_count()} cores",
        "before": {"rev": rev.stdout.strip(), "median_step_s": round(before, 4), "steps_s": sides["before"]},
        "after": {"rev": f"{head.stdout.strip()} + working tree", "median_step_s": round(after, 4)},
        "after_steps_s": sides["after"],
        "size": result["size"],
        "ratio_after_to_before": round(after / before, 4),
    }
    print(f"before {before:.3f} s, after {after:.3f} s per step: after/before = {after / before:.3f}")
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
