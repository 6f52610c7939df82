"""What goes to output/: the image every N iterations, the final image, the costs log."""

import csv
import io
import os
import tempfile
from pathlib import Path

from nst_tf import images
from nst_tf.errors import NstError

COSTS_HEADER = ("iteration", "total", "content", "style")
FINAL_IMAGE = "generated_image.jpg"


def prepare_output_dir(path):
    """Create `path` if needed and prove it is writable, before any long work starts.

    Raises:
      NstError: naming --output_dir, when it is a file or cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NstError(f"--output_dir {path} is a file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as e:
        raise NstError(f"--output_dir {path} is not writable ({e.strerror}); choose another folder")
    return path


class Report:
    """Writes a run's outputs the way the assignment's `model_nn` did, plus `costs.csv`.

    `<i>.png` at every iteration i with i % save_every == 0 (the image after step i+1),
    `generated_image.jpg` at the end, and `costs.csv` (`iteration,total,content,style`,
    one row per image saved). Every file is written to a temporary name and renamed.
    """

    def __init__(self, output_dir, save_every):
        self.output_dir = Path(output_dir)
        self.save_every = save_every
        self.rows = []

    def __call__(self, progress):
        """Save what `progress` (an `optimize.Progress`) carries; returns the paths written."""
        if progress.costs is None:
            return []
        written = []
        if progress.iteration % self.save_every == 0:
            written.append(self.output_dir / f"{progress.iteration}.png")
            images.save_image(written[-1], progress.image)
        if progress.is_last:
            written.append(self.output_dir / FINAL_IMAGE)
            images.save_image(written[-1], progress.image)
        c = progress.costs
        self.rows.append((progress.iteration, c["total"], c["content"], c["style"]))
        self.write_costs()
        return written

    def write_costs(self):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COSTS_HEADER)
        writer.writerows((i, f"{t:.9g}", f"{c:.9g}", f"{s:.9g}") for i, t, c, s in self.rows)
        path = self.output_dir / "costs.csv"
        images.atomic_write(path, lambda tmp: Path(tmp).write_text(text.getvalue()))


def read_costs(path):
    """Read a costs.csv back as a list of (iteration, total, content, style)."""
    with open(os.fspath(path), newline="") as f:
        rows = list(csv.reader(f))
    if not rows or tuple(rows[0]) != COSTS_HEADER:
        raise NstError(f"{path}: not an nst_tf costs.csv")
    return [(int(r[0]), float(r[1]), float(r[2]), float(r[3])) for r in rows[1:]]
