"""Where WCT's style distance comes from: each level set's per-layer terms on one held-out pair.

    .venv/bin/python bench/wct_levels.py --data /work/data/fast/manifest.json   # ~2 min idle

For the first held-out pair of docs/make_fast.py (bee x rhythm unless --photo/--style say otherwise),
WCT with each `--sets` level set (and `--repeat` passes of `--repeat_levels`, each pass starting
from the previous output), and the per-layer terms of the style distance S of `nst_tf.app.metrics`
(|mu - mu_s|^2 + |sigma - sigma_s|^2) / C at relu1_1 ... relu4_1, measured twice:

- with the judging VGG-19 (average pooling, what docs/fast.md reports), and
- with the encoder the decoders were trained for (max pooling), where WCT sets the statistics of
  its level exactly: a term there that stays large says the decoder did not realise the
  transformed features.

Each term is also given as a ratio to the unstylised photo's (the peer: 1 = no closer to the style
than the photo). The settings are `--method wct`'s defaults (float32). Results go to
bench/results/wct_levels.json.
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs"))

import make_fast  # noqa: E402  (the held-out pair names and the manifest reading)

from nst_tf import images  # noqa: E402
from nst_tf.app import metrics  # noqa: E402
from nst_tf.methods import get  # noqa: E402
from nst_tf.nets import weights  # noqa: E402
from nst_tf.nets.vgg import build_vgg  # noqa: E402

OUT = REPO / "bench" / "results" / "wct_levels.json"
SETS = ("4", "3", "2", "1", "4,3", "4,3,2", "4,3,2,1", "3,2,1")


def terms(judge, image, style_moments):
    """S's term at each layer: `Judge.style_distance` of that layer alone."""
    m = judge.moments(judge.features(image))
    return [judge.style_distance({k: m[k]}, {k: style_moments[k]}) for k in metrics.STYLE_LAYERS]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the training manifest (its held-out split is used)")
    parser.add_argument("--photo", default=make_fast.PHOTOS[0], help="a held-out photo's name prefix")
    parser.add_argument("--style", default=make_fast.STYLES[0], help="a held-out style's name prefix")
    parser.add_argument("--sets", default=";".join(SETS), help="level sets separated by ';'")
    parser.add_argument("--repeat_levels", default="2", help="a level set run again on its own output")
    parser.add_argument("--repeat", type=int, default=3, help="passes of --repeat_levels")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()

    root = Path(args.data).parent
    (photo,), (style_record,) = (
        make_fast.heldout(args.data, [args.photo]),
        make_fast.heldout(args.data, [args.style]),
    )
    content = images.load_image(root / photo["file"])
    style = images.load_image(root / style_record["file"])
    vgg_weights = weights.resolve_weights(log=lambda m: None)
    judges = {"avg": metrics.Judge(vgg_weights), "max": metrics.Judge(vgg_weights)}
    judges["max"].model = build_vgg(vgg_weights, "max", outputs=list(metrics.STYLE_LAYERS))
    styled = metrics.long_side(style, metrics.STYLE_LONG_SIDE)
    style_moments = {k: j.moments(j.features(styled)) for k, j in judges.items()}
    width, height = make_fast.working_size(content)
    photo_rgb = images.resize_to(content, width, height)
    baseline = {k: terms(j, photo_rgb, style_moments[k]) for k, j in judges.items()}
    base = get("wct").presets["default"]
    sets = args.sets.split(";")
    results = {
        "bench": "wct_levels",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "photo": photo["file"],
        "style": style_record["file"],
        "layers": list(metrics.STYLE_LAYERS),
        "photo_terms": baseline,
        "machine": make_fast.machine(),
        "precision": base.precision,
        "runs": [],
    }

    def record(name, image, passes=1):
        got = {k: terms(j, image, style_moments[k]) for k, j in judges.items()}
        scores = judges["avg"].scores(image, content, style)
        row = {
            "levels": name,
            "passes": passes,
            "style_distance": scores["style_distance"],
            "content_distance": scores["content_distance"],
            "terms": got,
            "ratio_to_photo": {k: [a / b for a, b in zip(got[k], baseline[k])] for k in got},
        }
        results["runs"].append(row)
        fmt = lambda xs: " ".join(f"{x:8.0f}" for x in xs)  # noqa: E731
        ratios = " ".join(f"{r:5.2f}" for r in row["ratio_to_photo"]["max"])
        print(
            f"{name:>8} x{passes}  avg {fmt(got['avg'])}  max {fmt(got['max'])}  (max / photo {ratios})  "
            f"S {scores['style_distance']:8.0f}  content {scores['content_distance']:.3f}",
            flush=True,
        )

    print(
        f"{'photo':>8}     avg {' '.join(f'{x:8.0f}' for x in baseline['avg'])}  max "
        f"{' '.join(f'{x:8.0f}' for x in baseline['max'])}"
    )
    for levels, passes in [(s, 1) for s in sets] + [(args.repeat_levels, args.repeat)]:
        settings = dataclasses.replace(  # strength 1: where WCT sets its levels' statistics exactly
            base, width=width, height=height, wct_levels=levels, strength=1.0
        )
        engine = get("wct").engine(settings, vgg_weights)
        x = content
        for i in range(passes):
            progress = next(next(engine.stages([x], [engine.prepare_style([style])], settings)).steps())
            x = images.deprocess(progress.image)
            record(levels, x, i + 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
