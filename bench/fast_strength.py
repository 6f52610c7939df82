"""A fast method's strength on docs/fast.md's 16 held-out pairs, against the optimisation's distances.

    .venv/bin/python bench/fast_strength.py --data MANIFEST      # WCT at 0.6 and 1, ~3 min idle
    .venv/bin/python bench/fast_strength.py --data MANIFEST --strengths 0.4,0.5,0.6,0.8,1 --wct_levels 4,3,2,1
    .venv/bin/python bench/fast_strength.py --data MANIFEST --method adain --strengths 0.8,1

Each pair is made as docs/make_fast.py makes it (the page's runner, working size and judge; the
package's decoders or `--wct_decoder` / `--adain_decoder`), at each of `--strengths`, and scored with
`nst_tf.app.metrics`. The peer is the optimisation (`--preset quality`): each distance is over its
number on the same pair, from docs/fast/results.json (made by docs/make_fast.py, where the
optimisation's runs are timed and kept). Per strength: the pairs within the issues' 1.5x on both
distances, and the geometric means of the two ratios over the 16 pairs. bfloat16 where native.
Results: bench/results/fast_strength.json (or `--out`).
"""

import argparse
import datetime
import json
import sys
from pathlib import Path
from statistics import geometric_mean

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs"))

import make_fast  # noqa: E402  (the held-out pairs, the page's runner and judge)

from nst_tf import images  # noqa: E402

OUT = REPO / "bench" / "results" / "fast_strength.json"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the training manifest (its held-out split is used)")
    parser.add_argument("--method", default="wct", choices=make_fast.FAST)
    parser.add_argument("--strengths", default="0.6,1", help="comma-separated, each in [0, 1]")
    parser.add_argument("--wct_decoder", help="a folder of WCT decoders (default: the package's)")
    parser.add_argument("--wct_levels", help="WCT's levels (default: those its folder has)")
    parser.add_argument("--adain_decoder", help="a folder with an AdaIN decoder (default: the package's)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    try:
        strengths = [float(x) for x in args.strengths.split(",")]
    except ValueError:
        parser.error(f"--strengths: give numbers in [0, 1] separated by commas, not {args.strengths!r}")
    if not all(0.0 <= s <= 1.0 for s in strengths):
        parser.error(f"--strengths: each must be in [0, 1], not {args.strengths!r}")
    started = datetime.datetime.now(datetime.timezone.utc)
    page = make_fast.OUT / "results.json"
    if not page.is_file():
        parser.error(f"{page} is missing: make it first with docs/make_fast.py --data {args.data}")
    quality = json.loads(page.read_text())["runs"]["quality"]
    root = Path(args.data).parent
    runner = make_fast.Runner(args)
    pairs = [
        (photo, style)
        for photo in make_fast.heldout(args.data, make_fast.PHOTOS)
        for style in make_fast.heldout(args.data, make_fast.STYLES)
    ]
    load = lambda record: images.load_image(root / record["file"])  # noqa: E731
    found = []
    record = {
        "bench": "fast_strength",
        "started": started.isoformat(timespec="seconds"),
        "machine": make_fast.machine(),
        "method": args.method,
        "data": str(args.data),
        "peer": "the optimisation (--preset quality) on the same pairs: docs/fast/results.json",
        "results": found,
    }
    for strength in strengths:
        rows = {}
        for photo, style in pairs:
            key = make_fast.pair_key(photo, style)
            content, style_image = load(photo), load(style)
            image, _, settings = runner.stylise(args.method, content, [style_image], strength=strength)
            scores = runner.judge.scores(image, content, style_image)
            rows[key] = dict(
                zip(("style_over", "content_over"), make_fast.over_optimisation(scores, quality[key]))
            )
            print(f"[strength] {strength:g} {key}: {json.dumps(rows[key])}", file=sys.stderr, flush=True)
        within = [k for k, r in rows.items() if max(r.values()) <= make_fast.RATIO]
        found.append(
            {
                "strength": strength,
                "levels": list(settings.levels()),
                "within": within,
                "geometric_mean_style_over": geometric_mean([r["style_over"] for r in rows.values()]),
                "geometric_mean_content_over": geometric_mean([r["content_over"] for r in rows.values()]),
                "pairs": rows,
            }
        )
        record["decoders"] = make_fast.decoder_record(args.method, settings)  # the files used
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")  # after each strength
    print(f"{args.method}, {len(pairs)} pairs, over the optimisation's:")
    print("strength (levels) | within 1.5x | style (geometric mean) | content (geometric mean)")
    for r in found:
        print(
            f"strength {r['strength']:g} (levels {','.join(map(str, r['levels']))}) | {len(r['within'])} "
            f"| x{r['geometric_mean_style_over']:.2f} | x{r['geometric_mean_content_over']:.2f}"
        )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
