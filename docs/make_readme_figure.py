"""The README's figure: the demo pair under `--preset assignment` and `--preset quality`.

Usage (from the repository root):

    python docs/make_readme_figure.py                   # runs both presets (~10 min on 2 cores)
    python docs/make_readme_figure.py --assignment output --quality /tmp/q   # reuse finished runs

Each preset runs as the README's demo command does (`python -m nst_tf.run --content chelsea.jpg
--style swirls.jpg --preset P --output_dir DIR`, 400x300) unless its output folder is given; the figure
(content, style and both results with their settings and wall time, 2x2, JPEG) goes to
`docs/quality/readme_demo.jpg`.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "quality" / "readme_demo.jpg"
SIZE = (400, 300)
STRIP = 22


def run_preset(preset, out_dir):
    cmd = [sys.executable, "-m", "nst_tf.run", "--content", "chelsea.jpg", "--style", "swirls.jpg"]
    cmd += ["--preset", preset, "--output_dir", str(out_dir)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=REPO, check=True)


def label_of(preset, out_dir):
    """The preset, its optimiser, iterations and style loss, and the optimisation's time (run.json)."""
    info = json.loads((out_dir / "run.json").read_text())
    config = info["config"]
    minutes = sum(scale["seconds"] for scale in info.get("scales", [])) / 60
    return (
        f"--preset {preset}: {config['optimizer']}, {info['iterations_done']} it., {config['style_loss']}, "
        f"{minutes:.1f} min"
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--assignment", type=Path, help="output folder of a finished assignment-preset run")
    p.add_argument("--quality", type=Path, help="output folder of a finished quality-preset run")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for preset in ("assignment", "quality"):
            dirs[preset] = getattr(args, preset) or Path(tmp) / preset
            if getattr(args, preset) is None:
                run_preset(preset, dirs[preset])
        tiles = [
            ("content: images/chelsea.jpg", Image.open(REPO / "images" / "chelsea.jpg")),
            ("style: images/swirls.jpg", Image.open(REPO / "images" / "swirls.jpg")),
        ] + [(label_of(k, d), Image.open(d / "generated_image.jpg")) for k, d in dirs.items()]
        font = ImageFont.load_default(size=13)
        w, h = SIZE
        sheet = Image.new("RGB", (2 * w, 2 * (h + STRIP)), "white")
        draw = ImageDraw.Draw(sheet)
        for i, (label, image) in enumerate(tiles):
            x, y = (i % 2) * w, (i // 2) * (h + STRIP)
            image = image.convert("RGB")
            scale = max(w / image.width, h / image.height)  # cover, then centre-crop (as resize_to)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            left, top = (image.width - w) // 2, (image.height - h) // 2
            sheet.paste(image.crop((left, top, left + w, top + h)), (x, y + STRIP))
            draw.text((x + 4, y + 4), label, fill="black", font=font)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_suffix(".tmp.jpg")
        sheet.save(tmp_out, "JPEG", quality=85, optimize=True)
        tmp_out.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
