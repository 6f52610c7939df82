"""The decoders' floor: how far a picture's own reconstruction is from it in style distance S.

    .venv/bin/python bench/decoder_floor.py --data MANIFEST     # ~3 min idle

A fast method's output can be no closer to the style's statistics than its decoders can rebuild
them. For docs/fast.md's held-out styles and photos (docs/make_fast.py's STYLES and PHOTOS, at a
512 px long side), each picture x is rebuilt through WCT's levels at strength 0 (each level alone,
then the cascade 5,4,3,2,1 the page uses) and through AdaIN with x as its own content and style,
and the style distance S(rebuilt, x) of `nst_tf.app.metrics` is measured, with the PSNR. The
peer is the optimisation: each style's S on docs/fast.md's pairs (`--preset quality`, from
docs/fast/results.json); the table gives S(rebuilt style) over the optimisation's median S for
that style. Above 1.5 the method cannot pass the issues' bar on that style, whatever its
transform does: the decoder has to improve. bfloat16 where native (the methods' default here:
`auto`). Results: bench/results/decoder_floor.json.

Also each rebuild's grid: its power at the harmonics of the deepest decoder's stride (a pattern
that repeats every 8 px for relu4_1 and AdaIN, 16 for relu5_1 and the cascade) over the
picture's own power there, the lattice of docs/fast.md as a number (1: none added). It is measured
by a Fourier transform, apart from the training's `nets.decoder.stride_grid`, so that the term
the decoders were trained on is not also their judge.
"""

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs"))

import make_fast  # noqa: E402  (the held-out names and the manifest reading)

from nst_tf import images, precision  # noqa: E402
from nst_tf.app import metrics  # noqa: E402
from nst_tf.methods import base, get  # noqa: E402
from nst_tf.methods.adain.config import AdaINSettings  # noqa: E402
from nst_tf.methods.wct.config import WCTSettings  # noqa: E402
from nst_tf.nets import decoder_files as decoders  # noqa: E402
from nst_tf.nets import weights  # noqa: E402

OUT = REPO / "bench" / "results" / "decoder_floor.json"
RESULTS = REPO / "docs" / "fast" / "results.json"
WAYS = ("wct 5", "wct 4", "wct 3", "wct 2", "wct 1", "wct 5,4,3,2,1", "adain")


def rebuild(way, picture, vgg_weights, kind, folders, engines):
    """`picture` (H, W, 3) uint8 through `way`: WCT levels at strength 0, or AdaIN onto itself, with
    the decoders of `folders` ({method: folder or None for the package's}); `engines` caches each
    way's engine (an engine serves any size, as in docs/make_fast.py)."""
    h, w = picture.shape[:2]
    method = way.split()[0]
    chosen = {"decoder": str(folders[method])} if folders.get(method) else {}
    if method == "adain":
        settings = AdaINSettings(width=w, height=h, precision=kind, **chosen)
    else:
        levels = way.split()[1]
        settings = WCTSettings(width=w, height=h, precision=kind, wct_levels=levels, strength=0.0, **chosen)
    if way not in engines:
        engines[way] = get(method).engine(settings, vgg_weights)
    engine = engines[way]
    return images.deprocess(
        engine.stylise(base.prepare_inputs(picture, engine.prepare_style([picture]), settings), settings)
    )


def way_stride(way):
    """The pixels a way's deepest decoder upsamples by: its lattice's period."""
    levels = [4] if way == "adain" else [int(lv) for lv in way.split()[1].split(",")]
    return decoders.level_stride(max(levels))


def grid_power(picture, stride):
    """Power of an (H, W, 3) uint8 image's grey at the harmonics of `stride` px: every (k, l) /
    stride cycles a pixel but (0, 0), i.e. all of a pattern that repeats every `stride` px."""
    h, w = picture.shape[0] // stride * stride, picture.shape[1] // stride * stride
    grey = picture[:h, :w].astype(np.float64).mean(axis=2)
    power = np.abs(np.fft.fft2(grey - grey.mean())) ** 2
    return float(power[:: h // stride, :: w // stride].sum())


def optimisation_distances(style_name):
    """The optimisation's S on docs/fast.md's pairs with this style."""
    quality = json.loads(RESULTS.read_text())["runs"]["quality"]
    return [r["style_distance"] for key, r in quality.items() if key.endswith("__" + style_name)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the training manifest (its held-out split is used)")
    parser.add_argument("--wct_decoder", help="a folder of WCT decoders (default: the package's)")
    parser.add_argument("--adain_decoder", help="a folder with an AdaIN decoder (default: the package's)")
    parser.add_argument("--ways", default=";".join(WAYS), help="of " + "; ".join(WAYS) + ", separated by ';'")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    ways = [w.strip() for w in args.ways.split(";")]
    if not ways or not set(ways) <= set(WAYS):
        parser.error(f"--ways: each of {'; '.join(WAYS)}, separated by ';'")
    folders = {"wct": args.wct_decoder, "adain": args.adain_decoder}
    started = datetime.datetime.now(datetime.timezone.utc)
    root = Path(args.data).parent
    vgg_weights = weights.embedded_default()
    judge = metrics.Judge(vgg_weights)
    kind = precision.resolve("auto")
    rows, engines = [], {}
    records = [("style", r) for r in make_fast.heldout(args.data, make_fast.STYLES)]
    records += [("photo", r) for r in make_fast.heldout(args.data, make_fast.PHOTOS)]
    for role, record in records:
        picture = metrics.long_side(images.load_image(root / record["file"]), metrics.STYLE_LONG_SIDE)
        own = judge.moments(judge.features(picture))
        name = make_fast.name_of(record)
        peer = optimisation_distances(name) if role == "style" else []
        row = {"picture": name, "role": role, "optimisation_S": peer, "ways": {}}
        for way in ways:
            rebuilt = rebuild(way, picture, vgg_weights, kind, folders, engines)
            s = judge.style_distance(judge.moments(judge.features(rebuilt)), own)
            mse = float(np.mean((rebuilt.astype(np.float64) - picture) ** 2))
            entry = {"S": s, "psnr_db": 10 * np.log10(255.0**2 / max(mse, 1e-12))}
            stride = way_stride(way)
            if stride > 1:  # relu1_1's decoder does not upsample: no lattice to measure
                entry["grid_over_picture"] = grid_power(rebuilt, stride) / grid_power(picture, stride)
            if peer:
                entry["over_optimisation"] = s / statistics.median(peer)
            row["ways"][way] = entry
            print(f"[floor] {name} {way}: S {s:.0f}, {entry['psnr_db']:.2f} dB", file=sys.stderr, flush=True)
        rows.append(row)
    record = {
        "bench": "decoder_floor",
        "started": started.isoformat(timespec="seconds"),
        "precision": kind,
        "data": str(args.data),
        "decoders": {m: f or "the package's" for m, f in folders.items()},
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    print("| picture | " + " | ".join(ways) + " |")
    print("| --- |" + " --- |" * len(ways))
    for row in rows:
        cells = []
        for way in ways:
            e = row["ways"][way]
            ratio = f" (×{e['over_optimisation']:.1f})" if "over_optimisation" in e else ""
            grid = f", grid ×{e['grid_over_picture']:.1f}" if "grid_over_picture" in e else ""
            cells.append(f"{e['S']:.0f}{ratio}, {e['psnr_db']:.1f} dB{grid}")
        print(f"| {row['role']} {row['picture']} | " + " | ".join(cells) + " |")
    grids = [[row["ways"][way].get("grid_over_picture") for row in rows] for way in ways]
    means = [f"×{statistics.geometric_mean(g):.1f}" if None not in g else "—" for g in grids]
    print("| grid, geometric mean | " + " | ".join(means) + " |")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
