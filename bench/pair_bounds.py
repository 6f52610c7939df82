"""Where a fast method's distances on docs/fast.md's pairs come from: its transform or its decoder.

    .venv/bin/python bench/pair_bounds.py --data MANIFEST     # ~3 min idle

For each of the page's 16 held-out pairs (docs/make_fast.py's PHOTOS x STYLES, the photo at the
page's 512 px working size, the style at `nst_tf.app.metrics`' 512 px long side):

- the transform's own content cost: the content distance (relu4_1, `nst_tf.app.metrics`) of the
  relu4_1 features that a perfect decoder would have to produce: AdaIN's target, and WCT's whitening
  and colouring at relu4_1 alone. They are computed in the judge's own features (average pooling;
  the methods encode with max pooling), so they are the transforms' cost in the judge's units, not
  the methods' exact targets; negative values are clipped as a ReLU's output would be;
- the method's output, made as docs/make_fast.py makes it but at strength 1 (the targets' strength;
  WCT's default is 0.6), with its decoders: its content
  distance, and its style distance S split by layer, relu1_1 ... relu4_1.

Everything is over the optimisation's (`--preset quality`) number on the same pair, from
docs/fast/results.json: content over its content distance, each layer's S over its total S. The
issues' bar is 1.5 for the content and for the sum of the four layers. bfloat16 where native.
Results: bench/results/pair_bounds.json.
"""

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs"))

import make_fast  # noqa: E402  (the held-out pairs, the page's runner and working size)

from nst_tf import images  # noqa: E402
from nst_tf.app import metrics  # noqa: E402
from nst_tf.methods.wct.transforms import LinearMap, Moments, mean_and_covariance  # noqa: E402

OUT = REPO / "bench" / "results" / "pair_bounds.json"
METHODS = ("wct", "adain")


def targets(content, style):
    """{method: relu4_1 target}: the methods' own maps (`transforms.LinearMap`) applied to the
    content's (positions, C) features, clipped at 0."""
    adain_stats = lambda rows: Moments(diagonal=True).add(rows).result()  # noqa: E731
    maps = {
        "wct": LinearMap.wct(mean_and_covariance(content), mean_and_covariance(style)),
        "adain": LinearMap.adain(adain_stats(content), adain_stats(style)),
    }
    return {method: np.maximum(f(content).numpy(), 0) for method, f in maps.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the training manifest (its held-out split is used)")
    parser.add_argument("--wct_decoder", help="a folder of WCT decoders (default: the package's)")
    parser.add_argument("--adain_decoder", help="a folder with an AdaIN decoder (default: the package's)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    args.wct_levels = None  # the page's: the levels the folder has
    started = datetime.datetime.now(datetime.timezone.utc)
    quality = json.loads(make_fast.OUT.joinpath("results.json").read_text())["runs"]["quality"]
    root = Path(args.data).parent
    runner = make_fast.Runner(args)
    judge = runner.judge
    rows = []
    for photo in make_fast.heldout(args.data, make_fast.PHOTOS):
        content = images.load_image(root / photo["file"])
        content = images.resize_to(content, *make_fast.working_size(content))
        f_content = judge.features(content)
        for style in make_fast.heldout(args.data, make_fast.STYLES):
            key = make_fast.pair_key(photo, style)
            peer = quality[key]
            style_image = images.load_image(root / style["file"])
            f_style = judge.features(metrics.long_side(style_image, metrics.STYLE_LONG_SIDE))
            m_style = judge.moments(f_style)
            layer = metrics.CONTENT_LAYER
            own = targets(f_content[layer], f_style[layer])
            row = {"pair": key, "optimisation": {k: peer[k] for k in ("content_distance", "style_distance")}}
            for method in args.methods:
                image, _, _ = runner.stylise(method, content, [style_image], strength=1.0)  # the targets'
                f_out = judge.features(image)
                m_out = judge.moments(f_out)
                by_layer = {l: judge.style_distance({l: m_out[l]}, {l: m_style[l]}) for l in m_out}
                row[method] = {
                    "target_content_over": metrics.content_distance(own[method], f_content[layer])
                    / peer["content_distance"],
                    "content_over": metrics.content_distance(f_out[layer], f_content[layer])
                    / peer["content_distance"],
                    "style_over_by_layer": {l: s / peer["style_distance"] for l, s in by_layer.items()},
                }
                r = row[method]
                print(
                    f"[bounds] {key} {method}: target content ×{r['target_content_over']:.2f}, "
                    f"content ×{r['content_over']:.2f}, style ×{sum(r['style_over_by_layer'].values()):.2f}",
                    file=sys.stderr,
                    flush=True,
                )
            rows.append(row)
    record = {
        "bench": "pair_bounds",
        "started": started.isoformat(timespec="seconds"),
        "data": str(args.data),
        "decoders": {m: getattr(args, f"{m}_decoder") or "the package's" for m in args.methods},
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    head = " | ".join(
        f"{m}: target content | content | S relu1_1 + 2_1 + 3_1 + 4_1 = total" for m in args.methods
    )
    print(f"| pair (× the optimisation's) | {head} |")
    print("| --- |" + " --- | --- | --- |" * len(args.methods))
    for row in rows:
        cells = []
        for m in args.methods:
            r = row[m]
            layers = list(r["style_over_by_layer"].values())
            parts = " + ".join(f"{x:.2f}" for x in layers)
            cells += [
                f"{r['target_content_over']:.2f}",
                f"{r['content_over']:.2f}",
                f"{parts} = {sum(layers):.2f}",
            ]
        print(f"| {row['pair'].replace('__', ' × ')} | " + " | ".join(cells) + " |")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
