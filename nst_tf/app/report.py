"""What goes to output/: images every N iterations, the final image, costs, plots, run.json.

`python -m nst_tf.report OUTPUT_DIR` rebuilds the contact sheet, the loss plot and the
animation of a finished or interrupted run from its saved images and costs.csv.
"""

import csv
import io
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from nst_tf import files, images
from nst_tf.errors import NstError, SettingError

COST_NAMES = ("total", "content", "style")  # the optimisation's; a method names its own
COSTS_HEADER = ("iteration", *COST_NAMES)
COSTS_CSV = "costs.csv"
FINAL_IMAGE = "generated_image.jpg"
CONTACT_SHEET = "contact_sheet.jpg"
LOSS_PLOT = "costs.png"
ANIMATION = "progress.gif"
RUN_JSON = "run.json"
CHECKPOINT_DIR = "checkpoint"


def prepare_output_dir(path, needed_bytes=0):
    """Create `path` if needed and prove it is writable and roomy enough, before any long work.

    Raises:
      NstError: naming --output_dir, when it is a file, cannot be written or lacks space.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SettingError("output_dir", f"{{setting}} {path} is a file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-") as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
            os.fsync(probe.fileno())
        free = shutil.disk_usage(path).free
    except OSError as e:
        raise SettingError(
            "output_dir", f"{{setting}} {path} is not writable ({e.strerror}); choose another folder"
        )
    if free < needed_bytes:
        raise SettingError(
            "output_dir",
            f"{{setting}} {path} has {free / 2**20:.0f} MB free and this run writes about "
            f"{needed_bytes / 2**20:.0f} MB; free some space or choose another folder",
        )
    return path


class Report:
    """Writes a run's outputs the way the assignment's `model_nn` did, plus `costs.csv`.

    `<i>.png` at every iteration i with i % save_every == 0 (the image after step i+1),
    `generated_image.jpg` at the end (or when a run stops on a loss that is not finite),
    and `costs.csv` (`iteration,total,content,style`, one row per image saved). Every file
    is written to a temporary name and renamed.
    """

    def __init__(self, output_dir, save_every, rows=(), prefix="", final=True, cost_names=COST_NAMES):
        self.output_dir = Path(output_dir)
        self.save_every = save_every  # None: only the final image (a method of one pass)
        self.cost_names = tuple(cost_names)
        self.rows = {row[0]: tuple(row) for row in rows}
        self.prefix, self.final = prefix, final  # coarse-to-fine: earlier scales name their files

    @classmethod
    def resume(cls, output_dir, save_every, done, prefix="", final=True, cost_names=COST_NAMES):
        """A Report continuing a run of which `done` iterations are kept: later rows are dropped."""
        path = Path(output_dir) / f"{prefix}{COSTS_CSV}"
        rows = read_costs(path) if path.exists() else []
        return cls(output_dir, save_every, [row for row in rows if row[0] < done], prefix, final, cost_names)

    def __call__(self, progress, force=False):
        """Save what `progress` (a `methods.base.Progress`) carries; `force` saves `<i>.png` off-schedule."""
        if progress.costs is None:
            return []
        written = []
        if force or (self.save_every and progress.iteration % self.save_every == 0):
            written.append(self.output_dir / f"{self.prefix}{progress.iteration}.png")
            images.save_image(written[-1], progress.image)
        if self.final and (progress.is_last or progress.failure):
            written.append(self.output_dir / FINAL_IMAGE)
            images.save_image(written[-1], progress.image)
        c = progress.costs
        self.rows[progress.iteration] = (progress.iteration, *(c[name] for name in self.cost_names))
        self.write_costs()
        return written

    def write_costs(self):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(("iteration", *self.cost_names))
        rows = (self.rows[i] for i in sorted(self.rows))
        writer.writerows((row[0], *(f"{v:.9g}" for v in row[1:])) for row in rows)
        path = self.output_dir / f"{self.prefix}{COSTS_CSV}"
        files.write_text(path, text.getvalue())


def write_checkpoint(output_dir, checkpoint, done, scale=0):
    """Save the optimiser state (a `tf.train.Checkpoint`) after `done` iterations, atomically.

    The state goes to `checkpoint/ckpt-<scale>-<done>.*`; then `checkpoint/latest.json` is replaced
    to point at it (the switch is one rename), then older states are deleted.
    """
    folder = Path(output_dir) / CHECKPOINT_DIR
    folder.mkdir(exist_ok=True)
    prefix = f"ckpt-{scale}-{done}"
    checkpoint.write(str(folder / prefix))
    text = json.dumps({"prefix": prefix, "iterations_done": done, "scale": scale}) + "\n"
    files.write_text(folder / "latest.json", text)
    for old in folder.glob("ckpt-*"):
        if not old.name.startswith(prefix + "."):
            old.unlink(missing_ok=True)


def latest_checkpoint(output_dir):
    """(checkpoint prefix, iterations done, scale) of a run's last saved state, or None."""
    pointer = Path(output_dir) / CHECKPOINT_DIR / "latest.json"
    try:
        latest = json.loads(pointer.read_text())
        return (
            str(pointer.parent / latest["prefix"]),
            int(latest["iterations_done"]),
            int(latest.get("scale", 0)),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_costs_table(path):
    """A costs.csv as (header, rows): ("iteration", cost names...), [(iteration, costs...)]."""
    with open(os.fspath(path), newline="") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:1] != ["iteration"] or len(rows[0]) < 2:
        raise NstError(f"{path}: not an nst_tf costs.csv")
    return tuple(rows[0]), [(int(r[0]), *(float(v) for v in r[1:])) for r in rows[1:]]


def read_costs(path):
    """A costs.csv's rows: (iteration, costs...); (iteration, total, content, style) for gatys."""
    return read_costs_table(path)[1]


def saved_iterations(output_dir):
    """The `<i>.png` checkpoints of a run, as sorted (iteration, path) pairs."""
    found = [(int(p.stem), p) for p in Path(output_dir).glob("*.png") if re.fullmatch(r"\d+", p.stem)]
    return sorted(found)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _frames(output_dir):
    """(label, PIL image) for every checkpoint, then the final image."""
    costs_csv = Path(output_dir) / COSTS_CSV
    header, rows = read_costs_table(costs_csv) if costs_csv.exists() else (COSTS_HEADER, [])
    costs = {row[0]: row[1] for row in rows}  # the first cost: J for the optimisation
    name = "J" if header[1] == "total" else header[1]
    frames = []
    for i, path in saved_iterations(output_dir):
        label = f"iteration {i}" + (f"\n{name} = {costs[i]:.3g}" if i in costs else "")
        frames.append((label, Image.open(path).convert("RGB")))
    final = Path(output_dir) / FINAL_IMAGE
    if final.exists():
        last = max(costs) if costs else None
        label = "final" + (f" ({last})\n{name} = {costs[last]:.3g}" if last is not None else "")
        frames.append((label, Image.open(final).convert("RGB")))
    if not frames:
        raise NstError(
            f"{output_dir}: no saved images (<i>.png or {FINAL_IMAGE}); is it an nst_tf output folder?"
        )
    return frames


def write_contact_sheet(output_dir, thumb_width=200, columns=5):
    """A grid of every saved image, labelled with its iteration and total cost."""
    frames = _frames(output_dir)
    w = min(thumb_width, frames[0][1].width)
    h = round(frames[0][1].height * w / frames[0][1].width)
    label_h, pad = 34, 6
    cols = min(columns, len(frames))
    rows = -(-len(frames) // cols)
    sheet = Image.new("RGB", (cols * (w + pad) + pad, rows * (h + label_h + pad) + pad), "white")
    draw, font = ImageDraw.Draw(sheet), _font(13)
    for k, (label, img) in enumerate(frames):
        x, y = pad + (k % cols) * (w + pad), pad + (k // cols) * (h + label_h + pad)
        sheet.paste(img.resize((w, h), Image.Resampling.LANCZOS), (x, y))
        draw.multiline_text((x + 2, y + h + 2), label, fill="black", font=font, spacing=2)
    path = Path(output_dir) / CONTACT_SHEET
    files.atomic_write(path, lambda tmp: sheet.save(tmp, "JPEG", quality=92))
    return path


PLOT_LABELS = {"total": "total J", "content": "content J_content", "style": "style J_style"}


def write_loss_plot(output_dir):
    """Total, content and style cost (log scale) against the iteration, from costs.csv."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    header, rows = read_costs_table(Path(output_dir) / COSTS_CSV)
    rows = np.array(rows, dtype=np.float64).reshape(-1, len(header))
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for column, name in enumerate(header[1:], 1):
        ax.plot(rows[:, 0], rows[:, column], marker="o", markersize=3, label=PLOT_LABELS.get(name, name))
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cost (log scale)")
    ax.set_title("Neural style transfer: costs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(output_dir) / LOSS_PLOT
    files.atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def write_animation(output_dir, frame_ms=400, hold_ms=1500):
    """An animated GIF of the saved images in order, holding on the final one."""
    frames = [img for _, img in _frames(output_dir)]
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    path = Path(output_dir) / ANIMATION
    files.atomic_write(
        path,
        lambda tmp: frames[0].save(
            tmp, "GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True
        ),
    )
    return path


def write_summaries(output_dir):
    """Contact sheet, loss plot and animation; returns their paths (those that could be made)."""
    written = [write_contact_sheet(output_dir), write_animation(output_dir)]
    if (Path(output_dir) / COSTS_CSV).exists():
        written.append(write_loss_plot(output_dir))
    return written


def write_run_json(output_dir, record):
    """`run.json`: everything needed to understand and repeat a run (settings, weights, timings)."""
    text = json.dumps(record, indent=2, sort_keys=True, default=str) + "\n"
    path = Path(output_dir) / RUN_JSON
    files.write_text(path, text)
    return path


class TensorBoardWriter:
    """Scalars (total, content, style cost) and the image at every saved iteration, for TensorBoard."""

    def __init__(self, logdir):
        import tensorflow as tf

        try:
            import tensorboard  # noqa: F401  (tf.summary needs it; TensorFlow does not install it)
        except ImportError:
            raise SettingError(
                "tensorboard_dir", "{setting} needs TensorBoard: pip install 'nst_tf[tensorboard]'"
            )
        self.tf = tf
        self.writer = tf.summary.create_file_writer(str(logdir))

    def __call__(self, progress):
        if progress.costs is None:
            return
        with self.writer.as_default(step=progress.iteration):
            for name, value in progress.costs.items():
                self.tf.summary.scalar(f"cost/{name}", value)
            self.tf.summary.image("generated", images.deprocess(progress.image)[np.newaxis])
        self.writer.flush()


def main(argv=None):
    """`python -m nst_tf.report OUTPUT_DIR`: rebuild the contact sheet, plot and animation."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m nst_tf.report OUTPUT_DIR", file=sys.stderr)
        return 2
    try:
        if not Path(argv[0]).is_dir():
            raise NstError(f"{argv[0]} is not a folder; give a run's output folder")
        for path in write_summaries(argv[0]):
            print(path)
    except NstError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
