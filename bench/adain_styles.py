"""How far an AdaIN decoder generalises: its loss on the training styles against the held-out ones.

    .venv/bin/python bench/adain_styles.py --data /work/data/fast/manifest.json   # ~1.5 min idle

The held-out photos (`--photos` of them, long side `--side` px) each stylised with every held-out
style and with `--train_styles` training styles drawn with `--seed`; per style, the relative content
and style losses of the training (`nst_tf.methods.adain.training.adain_losses`). The peer is the
training styles: the ratio of the held-out mean style loss to the training styles' says how much
of what the decoder learnt holds for styles it has not seen (1 = all of it). A decoder that
memorised its styles shows a large ratio; more styles in the data, not more steps, is then what
helps. Results go to bench/results/adain_styles.json (`--out` another file).
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from nst_tf import images, precision  # noqa: E402
from nst_tf.app.metrics import long_side  # noqa: E402
from nst_tf.data import pipeline  # noqa: E402
from nst_tf.methods.adain.config import DECODER_FILE  # noqa: E402
from nst_tf.methods.adain.training import DecoderTraining  # noqa: E402
from nst_tf.nets import weights  # noqa: E402

OUT = REPO / "bench" / "results" / "adain_styles.json"
SHIPPED = REPO / "nst_tf" / "models" / "adain" / DECODER_FILE


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the data command's manifest.json")
    parser.add_argument("--decoder", default=str(SHIPPED), help="an AdaIN decoder file")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--train_styles", type=int, default=9)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default=str(OUT), help="the results file")
    args = parser.parse_args()

    used = precision.resolve("auto")
    training = DecoderTraining(weights.resolve_weights(log=lambda m: None), used)
    training.load(args.decoder)
    photo_paths = pipeline.manifest_files(args.data, "photo", "heldout")[: args.photos]
    photos = [long_side(images.load_image(p), args.side) for p in photo_paths]
    drawn = random.Random(args.seed).sample(pipeline.manifest_files(args.data, "style"), args.train_styles)
    rows, start = [], time.perf_counter()
    for split, paths in (
        ("heldout", pipeline.manifest_files(args.data, "style", "heldout")),
        ("train", drawn),
    ):
        for path in paths:
            got = training.evaluate(photos, [long_side(images.load_image(path), args.side)])
            rows.append(
                {
                    "split": split,
                    "style": Path(path).name,
                    "content": got["content"],
                    "style_loss": got["style"],
                }
            )
            name = Path(path).name[:60]
            print(f"{split:8s} {name:60s} content {got['content']:.3f}  style {got['style']:.3f}")
    mean = {
        s: float(np.mean([r["style_loss"] for r in rows if r["split"] == s])) for s in ("heldout", "train")
    }
    ratio = mean["heldout"] / mean["train"]
    print(f"mean style loss: held-out {mean['heldout']:.3f}, training styles {mean['train']:.3f}", end="")
    print(f": ratio {ratio:.2f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "decoder": str(args.decoder),
                "data": str(args.data),
                "precision": used,
                "photos": [Path(p).name for p in photo_paths],
                "side": args.side,
                "styles": rows,
                "mean_style_loss": mean,
                "heldout_over_train": ratio,
                "seconds": time.perf_counter() - start,
            },
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
