"""Wall time to reach a fixed loss: nst_tf's Adam (the assignment) against its L-BFGS, in one run.

Usage (from the repository root):

    .venv/bin/python bench/time_to_loss.py                 # 256x192, 200 Adam steps, ~3 min idle
    .venv/bin/python bench/time_to_loss.py --size 400x300

Both optimisers minimise the assignment's loss (alpha 10, beta 40, Gram, conv4_2 / conv1_1..conv5_1)
from the same noisy start (seed 1) on Tübingen / The Starry Night (`../shared/images`). Adam runs
200 steps (lr 2); the loss targets are the losses Adam's iterates reach after 50, 100 and 200 steps.
For each target the bench prints the wall time and gradient evaluations each optimiser needs to get
there and the ratio Adam / L-BFGS, and writes it all to `bench/results/time_to_loss.json`. The loss
of every iterate is recorded without extra forward passes (docs/make_quality.py's instrumentation).
"""

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "docs"))
sys.path.insert(0, str(BENCH))

import contention  # noqa: E402
import make_quality  # noqa: E402

from nst_tf import images  # noqa: E402
from nst_tf.methods.gatys import optimize  # noqa: E402
from nst_tf.nets import weights  # noqa: E402

SHARED_IMAGES = ROOT.parent / "shared" / "images"
MILESTONES = (50, 100, 200)  # Adam steps whose loss becomes a target


def size(text):
    w, h = text.lower().split("x")
    return int(w), int(h)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=size, default=(256, 192), help="WxH (default 256x192)")
    p.add_argument("--adam_steps", type=int, default=max(MILESTONES))
    p.add_argument("--lbfgs_iterations", type=int, default=200, help="L-BFGS stops here at the latest")
    p.add_argument("--content", type=Path, default=SHARED_IMAGES / "tubingen.jpg")
    p.add_argument("--style", type=Path, default=SHARED_IMAGES / "starry_night.jpg")
    p.add_argument("--out", type=Path, default=BENCH / "results" / "time_to_loss.json")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for path in (args.content, args.style):
        if not path.is_file():
            sys.exit(f"time_to_loss: {path} not found; pass --content and --style")
    width, height = args.size
    content = images.resize_to(images.load_image(args.content), width, height)
    style = images.resize_to(images.load_image(args.style), width, height)
    w = weights.embedded_default()
    base = dataclasses.replace(optimize.PRESETS["assignment"], width=width, height=height, seed=1)
    runs = {}
    for name, iterations in (("adam", args.adam_steps), ("lbfgs", args.lbfgs_iterations)):
        config = dataclasses.replace(base, optimizer=name, iterations=iterations, save_every=iterations)
        make_quality.log(f"{name}: up to {iterations} iterations at {width}x{height}")
        with contention.Meter() as meter:
            run = make_quality.run(content, style, w, config)
        runs[name] = {**run.summary(), "others_cpu": meter.others}
        make_quality.log(f"{name}: final loss {runs[name]['final']['total']:.4g}, others' CPU {meter.others}")
    adam, lbfgs = runs["adam"]["curve"], runs["lbfgs"]["curve"]
    rows = []
    for steps in (m for m in MILESTONES if m <= args.adam_steps):
        target = adam["loss"][steps]
        a = make_quality.first_below(adam, target)
        b = make_quality.first_below(lbfgs, target)
        rows.append(
            {
                "target": target,
                "adam_steps": steps,
                "adam": dict(zip(("iteration", "evaluations", "seconds"), a)),
                "lbfgs": None if b is None else dict(zip(("iteration", "evaluations", "seconds"), b)),
            }
        )
    lines = [
        f"Time to a loss target, Tübingen / The Starry Night {width}x{height}, the assignment's loss, seed 1",
        "",
        "| target (Adam's loss after) | Adam s (evaluations) | L-BFGS s (evaluations) | Adam / L-BFGS time |",
        "|---|--:|--:|--:|",
    ]
    for r in rows:
        a, b = r["adam"], r["lbfgs"]
        lbfgs_text = "not reached" if b is None else f"{b['seconds']:.1f} ({b['evaluations']})"
        ratio = "—" if b is None else f"{a['seconds'] / b['seconds']:.1f}×"
        lines.append(
            f"| {r['target']:.3g} ({r['adam_steps']} steps) | {a['seconds']:.1f} ({a['evaluations']}) "
            f"| {lbfgs_text} | {ratio} |"
        )
    others = max(runs[n]["others_cpu"] for n in runs)
    lines += ["", f"others' CPU share during the runs: at most {others}"]
    print("\n".join(lines))
    result = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": make_quality.machine(),
        "size": [width, height],
        "content": args.content.name,
        "style": args.style.name,
        "targets": rows,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
