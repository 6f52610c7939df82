"""Many images: every content x style pair, resumable, with a manifest (`python -m nst_tf.batch`).

Writes `OUT/<content-stem>__<style-stem>.jpg` for every pair and `OUT/manifest.csv`, rewritten
atomically after each pair. A rerun skips the pairs whose output exists and whose manifest row
has the same settings hash, so an interrupted batch resumes where it stopped. The method's engine
is built once per batch (VGG-19 built, steps traced once per size), each style is prepared once
(`engine.prepare_style`), and every pair runs through the same `engine.stages()` as one image
(`nst_tf.app.single`), so the images are those `nst_tf.run` makes (docs/batch.md).
"""

import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np

from nst_tf import files, images, methods, precision
from nst_tf.app import report
from nst_tf.app.single import duration
from nst_tf.errors import NstError, SettingError
from nst_tf.nets import weights

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MANIFEST = "manifest.csv"
ROWS_DIR = ".manifest_rows"  # per-pair rows a Beam run leaves before it writes the manifest
OLD_HEADER = (
    "pair",
    "content",
    "style",
    "output",
    "settings_hash",
    "status",
    "wall_s",
    "total",
    "content_cost",
    "style_cost",
    "error",
    "finished",
)
MANIFEST_HEADER = (*OLD_HEADER, "method", "costs")  # costs: every number the method reports, as JSON
DONE = ("ok", "skipped")
PREVIOUS = "previous"
HASH_IGNORES = ("save_every",)  # settings that do not change the output image
# What was added to the hashed record after manifests existed, with the value every earlier run
# had: left out of the hash at that value, so the pairs of older manifests still count as done.
NEWER_FIELDS = {
    "precision": "float32",
    "style_strength": 1.0,
    "style_fit": "stretch",
    "refine_iterations": 0,
    "style_size": 0,
    "content_loss": "mse",
    "refine_size": 0,
    "method": methods.DEFAULT,
    "models": {},
}


@dataclasses.dataclass(frozen=True)
class Job:
    """One pair of a batch and where its result goes.

    Attributes:
      name: `<content-stem>__<style-stem>`, the manifest key and the output's stem.
      content, style: the input image paths, as given.
      output: the output image path.
      settings_hash: digest of the settings, the weights and both input files.
      init_from: with `--init previous`, the previous frame's output (used if it exists).
    """

    name: str
    content: str
    style: str
    output: str
    settings_hash: str
    init_from: str | None = None


# --- the pairs -------------------------------------------------------------------------------


def expand(value, setting):
    """Image paths of `content`/`style`: folders, globs, files (bare names from images/), comma-separated.

    Raises:
      SettingError: naming `setting`, when a folder or glob holds no image.
    """
    found = []
    for item in (part.strip() for part in (value or "").split(",")):
        if item:
            found += _expand_one(item, setting)
    if not found:
        raise SettingError(
            setting, "{setting} is required; give a folder, a glob such as 'frames/*.png', or image files"
        )
    return list(dict.fromkeys(found))


def _expand_one(item, setting):
    path = Path(item)
    if path.is_dir():
        found = sorted(str(p) for p in path.iterdir() if is_image_name(p) and p.is_file())
        what = f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {item}"
    elif glob.has_magic(item):
        found = sorted(p for p in glob.glob(item) if Path(p).is_file())  # glob skips hidden files
        what = f"{item!r} matches no file"
    else:
        return [str(images.find_image(item, setting))]
    if not found:
        raise SettingError(setting, what)
    return found


def is_image_name(path):
    """An image by its suffix, not hidden (the temporary files of atomic writes are); any PurePath."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_pairs(path):
    """(content, style) paths from a CSV with a `content,style` header; relative to the CSV's folder.

    Raises:
      SettingError: naming `pairs`, when the file is missing or has no content and style columns.
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise SettingError("pairs", f"{{setting}} {path}: cannot read it ({e.strerror})")
    if not rows or not {"content", "style"} <= set(rows[0]):
        raise SettingError(
            "pairs", f"{{setting}} {path}: needs a header line 'content,style' and one row per pair"
        )
    return [(_beside(path, r["content"]), _beside(path, r["style"])) for r in rows if r["content"]]


def _beside(csv_path, value):
    value = value.strip()
    return value if "://" in value or Path(value).is_absolute() else str(csv_path.parent / value)


def every_pair(contents, styles):
    """Every content x style, content-major (all styles of the first content first)."""
    return [(c, s) for c in contents for s in styles]


def stem(path):
    return PurePosixPath(str(path)).stem


def pair_name(content, style):
    return f"{stem(content)}__{stem(style)}"


# --- settings hash, jobs, manifest -----------------------------------------------------------


def file_digest(path, open_file=open):
    """SHA-256 of a file's bytes; "missing" when it cannot be read (the pair then fails)."""
    try:
        return files.sha256_of(path, open_file)
    except OSError:
        return "missing"


def settings_hash(config, weights_sha256, content_digest, style_digest, fmt, method=None, models=None):
    """16 hex digits over what decides the output image: method, settings, weights, models, inputs, format."""
    settings = {
        **dataclasses.asdict(config),
        "method": (method or methods.get()).name,
        "models": dict(models or {}),
    }
    settings = {
        k: v for k, v in settings.items() if k not in HASH_IGNORES and NEWER_FIELDS.get(k, object()) != v
    }
    record = {
        "config": settings,
        "weights": weights_sha256,
        "content": content_digest,
        "style": style_digest,
        "format": fmt,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan_jobs(
    pairs, output_dir, config, weights_sha256, fmt="jpg", previous=False, method=None, **io_functions
):
    """A Job per (content, style) pair, in order; the settings hash of each.

    Args:
      pairs: (content, style) paths.
      output_dir: where the outputs go.
      config: the batch's settings; with `previous`, its init is the first frame's.
      weights_sha256: the weights file's SHA-256.
      fmt: "jpg" or "png".
      previous: each content starts from the previous content's output with the same style.
      method: the method (default gatys); its model files are part of the hash.
      **io_functions: `join` and `open_file` for other file systems (Beam's FileSystems).

    Raises:
      NstError: two different pairs would write the same output name.
    """
    method = method or methods.get()
    join, open_file = io_functions.get("join", os.path.join), io_functions.get("open_file", open)
    pairs = list(dict.fromkeys(pairs))
    _check_names(pairs)
    hashed = dataclasses.replace(config, init=f"{PREVIOUS}, first {config.init}") if previous else config
    models = {name: files.sha256_of(path) for name, path in method.files(config).items()}
    digests = {path: file_digest(path, open_file) for path in {p for pair in pairs for p in pair}}
    jobs, last_output = [], {}
    for content, style in pairs:
        name = pair_name(content, style)
        output = join(str(output_dir), f"{name}.{fmt}")
        digest = settings_hash(hashed, weights_sha256, digests[content], digests[style], fmt, method, models)
        init_from = last_output.get(style) if previous else None
        jobs.append(Job(name, str(content), str(style), output, digest, init_from))
        last_output[style] = output
    return jobs


def _check_names(pairs):
    seen = {}
    for pair in pairs:
        other = seen.setdefault(pair_name(*pair), pair)
        if other != pair:
            raise NstError(
                f"{other[0]} + {other[1]} and {pair[0]} + {pair[1]} would both be written as "
                f"{pair_name(*pair)}; rename one of the files"
            )


def job_row(job, status, wall=0.0, result_costs=None, error="", method=None):
    """The manifest row (all text) of a job: the optimisation's three costs in their own columns
    (as before other methods existed), every cost the method reports in `costs`."""
    c = result_costs or {}
    named = lambda key: f"{c[key]:.9g}" if key in c else ""  # noqa: E731
    return {
        "pair": job.name,
        "content": job.content,
        "style": job.style,
        "output": job.output,
        "settings_hash": job.settings_hash,
        "status": status,
        "wall_s": f"{wall:.2f}",
        "total": named("total"),
        "content_cost": named("content"),
        "style_cost": named("style"),
        "error": " ".join(str(error).split()),  # one line
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "method": (method or methods.get()).name,
        "costs": json.dumps({k: float(f"{v:.9g}") for k, v in c.items()}) if c else "",
    }


def parse_manifest(text, where=MANIFEST):
    """{pair: row} from a manifest's text.

    A manifest from before the `method` and `costs` columns reads as gatys rows.

    Raises:
      SettingError: naming `output_dir`, when the text is not an nst_tf manifest.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = tuple(reader.fieldnames or ())
    if header not in (MANIFEST_HEADER, OLD_HEADER):
        raise SettingError(
            "output_dir", f"{where}: not an nst_tf batch manifest; move it away or choose another {{setting}}"
        )
    return {row["pair"]: {"method": methods.DEFAULT, "costs": "", **row} for row in reader}


def manifest_text(rows):
    text = io.StringIO()
    writer = csv.DictWriter(text, MANIFEST_HEADER, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def ordered_rows(rows, jobs, old):
    """This batch's rows in job order, then older rows of pairs not in this batch (kept)."""
    names = [job.name for job in jobs]
    return [rows[n] for n in names if n in rows] + [r for n, r in old.items() if n not in set(names)]


def split_done(jobs, old, exists):
    """({name: skipped row}, [jobs to run]): done = output exists, manifest row ok, same hash."""
    done, pending = {}, []
    for job in jobs:
        row = old.get(job.name)
        if row and row["status"] in DONE and row["settings_hash"] == job.settings_hash and exists(job.output):
            done[job.name] = {**row, "status": "skipped", "content": job.content, "style": job.style}
        else:
            pending.append(job)
    return done, pending


def load_manifest(output_dir, read_text=None, row_files=None, join=os.path.join):
    """The manifest's rows, updated by per-pair rows an unfinished Beam run left behind.

    Args:
      read_text: path -> its text, or None when there is no such file (default: local files).
      row_files: output_dir -> paths of the per-pair row files (default: local `ROWS_DIR/*.json`).
      join: joins a folder and a name (Beam passes `FileSystems.join`).
    """
    read_text = read_text or (lambda p: Path(p).read_text() if Path(p).is_file() else None)
    row_files = row_files or (lambda out: sorted(str(p) for p in (Path(out) / ROWS_DIR).glob("*.json")))
    path = join(str(output_dir), MANIFEST)
    text = read_text(path)
    rows = parse_manifest(text, path) if text is not None else {}
    for row_file in row_files(output_dir):
        row = json.loads(read_text(row_file))
        rows[row["pair"]] = row
    return rows


def write_manifest(output_dir, rows):
    path = Path(output_dir) / MANIFEST
    files.write_text(path, manifest_text(rows))
    return path


# --- one engine for every pair ---------------------------------------------------------------


@dataclasses.dataclass
class Result:
    """One pair's outcome: the image to save (1, H, W, 3) and its costs, or why there is none."""

    image: np.ndarray | None
    costs: dict | None
    failure: str | None = None


@dataclasses.dataclass
class Loaded:
    """A job with its images read and its settings, ready to stylise."""

    job: Job
    content: np.ndarray
    style: np.ndarray
    config: object
    seconds: float


class Stylist:
    """One batch's method engine (built once) and its styles (each prepared once).

    `stylize()` runs the pairs through `engine.stages()`, as `nst_tf.run` runs one image, several
    pairs at a time if asked (and if the method can).
    """

    def __init__(self, vgg_weights, config, method=None):
        self.method = method or methods.get()
        self.engine = self.method.engine(config, vgg_weights)
        self._styles = {}

    def style(self, key, image):
        """The engine's prepared style for the style file `key`, made once."""
        if key not in self._styles:
            self._styles[key] = self.engine.prepare_style([image])
        return self._styles[key]

    def stylize(self, loaded, on_step=None):
        """Stylise the Loaded items together (one group); a Result for each."""
        contents = [item.content for item in loaded]
        styles = [self.style(item.job.style, item.style) for item in loaded]
        last = None
        for stage in self.engine.stages(contents, styles, loaded[0].config):
            for last in stage.steps():
                if on_step is not None:
                    on_step(last)
            if last is None or last.failure:
                break
        if last is None or last.failure:
            failure = last.failure if last is not None else "no result"
            return [Result(None, None, failure) for _ in loaded]
        return [Result(*last.item(i)) for i in range(len(loaded))]


# --- running jobs ----------------------------------------------------------------------------


def save_local(path, data):
    """Write an output atomically.

    Raises:
      SettingError: naming `output_dir`, when it cannot be written (a full disk, say); that ends the batch.
    """
    try:
        files.atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    except OSError as e:
        raise SettingError(
            "output_dir",
            f"cannot write {path} ({e.strerror or e}); free some space or choose another {{setting}}",
        )


def job_config(job, config, exists=os.path.exists):
    """The job's settings: starting from the previous frame's output when there is one."""
    if job.init_from and exists(job.init_from):
        return dataclasses.replace(config, init=job.init_from)
    return config


def load_job(job, config, load=images.load_image):
    """Read a job's images and check its settings.

    Raises:
      NstError: an image cannot be read or the settings do not fit it.
    """
    start = time.perf_counter()
    content, style = load(job.content), load(job.style)
    config = job_config(job, config).validate()
    return Loaded(job, content, style, config, time.perf_counter() - start)


def one_line(error, limit=400):
    """An exception as the manifest's one-line error: NstError's message, else `Type: message`, cut."""
    text = str(error) if isinstance(error, NstError) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_group(stylist, jobs, config, save=save_local, load=images.load_image, on_step=None):
    """Stylise some jobs together and save their images; a manifest row per job.

    A bad image or a failed stylisation gives a "failed" row with a one-line error; only
    an error saving an output (from `save`) is raised.
    """
    rows, ready = [], []
    for job in jobs:
        start = time.perf_counter()
        try:
            ready.append(load_job(job, config, load))
        except NstError as e:
            rows.append(
                job_row(job, "failed", time.perf_counter() - start, error=one_line(e), method=stylist.method)
            )
    if not ready:
        return rows
    start = time.perf_counter()
    try:
        results = stylist.stylize(ready, on_step)
    except Exception as e:  # one pair's failure must not end a long batch
        results = [Result(None, None, one_line(e))] * len(ready)
    share = (time.perf_counter() - start) / len(ready)
    for item, result in zip(ready, results):
        wall = item.seconds + share
        if result.failure:
            rows.append(job_row(item.job, "failed", wall, error=result.failure, method=stylist.method))
            continue
        save(item.job.output, images.encode_image(result.image, Path(item.job.output).suffix.lstrip(".")))
        rows.append(job_row(item.job, "ok", wall, result.costs, method=stylist.method))
    return rows


class BatchProgress:
    """Pairs done / total with an ETA: a line per pair, and the current step on a terminal."""

    def __init__(self, total, done, log=print, out=sys.stderr):
        self.total, self.done, self.log, self.out = total, done, log, out
        self.walls = []

    def eta(self):
        if not self.walls:
            return "?"
        return duration(sum(self.walls) / len(self.walls) * (self.total - self.done))

    def step(self, progress):
        if self.out.isatty():
            where = f"step {progress.iteration + 1}/{progress.iterations}"
            self.out.write(f"\r[{self.done}/{self.total} pairs] {where}, ETA {self.eta()} ")
            self.out.flush()

    def pair_done(self, row):
        self.done += 1
        self.walls.append(float(row["wall_s"]))
        if self.out.isatty():
            self.out.write("\r\033[K")
        costs = json.loads(row["costs"] or "{}")
        shown = ", ".join(f"{'J' if k == 'total' else k} = {v:.4g}" for k, v in list(costs.items())[:1])
        what = shown if row["status"] == "ok" else row["error"]
        self.log(
            f"[{self.done}/{self.total}] {row['pair']}: {row['status']} in {float(row['wall_s']):.1f}s, "
            f"{what} (batch ETA {self.eta()})"
        )


def check_options(config, images_per_batch, previous, method=None):
    """Raise SettingError for options that cannot go together."""
    method = method or methods.get()
    if images_per_batch < 1:
        raise SettingError("images_per_batch", "must be at least 1", images_per_batch)
    limit = method.group_limit(config)
    if limit is not None and images_per_batch > limit:
        why = f"{method.name} stylises at most {limit} at a time with these settings"
        raise SettingError("images_per_batch", why, images_per_batch)
    if previous and "init" not in {field.name for field in dataclasses.fields(config)}:
        raise SettingError(
            "init", f"{method.name} has no starting image to take from the previous frame", PREVIOUS
        )
    if images_per_batch > 1 and previous:
        raise SettingError("init", "needs images_per_batch 1: each frame waits for the one before", PREVIOUS)


def chunks(items, n):
    return [items[i : i + n] for i in range(0, len(items), n)]


def run_batch(
    pairs,
    output_dir,
    config,
    weights_path=None,
    images_per_batch=1,
    previous=False,
    fmt="jpg",
    log=print,
    method=None,
):
    """Stylise every (content, style) pair into `output_dir`, skipping pairs already done.

    Args:
      pairs: (content path, style path) pairs, in order.
      output_dir: folder for `<content-stem>__<style-stem>.<fmt>` and `manifest.csv`.
      config: the method's settings for every pair; with `previous`, its init is the first frame's.
      weights_path: VGG-19 weights file (None: `weights.resolve_weights`' default).
      images_per_batch: pairs stylised together (one (N, H, W, 3) image).
      previous: `init previous`: each content starts from the output of the content before it.
      fmt: "jpg" or "png".
      log: called with one-line messages.
      method: the method (default gatys).

    Returns:
      The manifest rows of this batch's pairs, in order.
    """
    method = method or methods.get()
    config.validate()
    check_options(config, images_per_batch, previous, method)
    used, why = precision.describe(config.precision)
    config = dataclasses.replace(config, precision=used)  # in the settings hash as used
    out = report.prepare_output_dir(output_dir, len(pairs) * config.width * config.height * 3)  # raw RGB
    vgg_weights = weights.resolve_weights(weights_path, log=log)
    jobs = plan_jobs(pairs, out, config, vgg_weights.sha256, fmt, previous, method)
    old = load_manifest(out)
    rows, pending = split_done(jobs, old, os.path.exists)
    sizes = " -> ".join(f"{w}x{h}" for w, h in method.stage_sizes(config))
    log(
        f"{len(jobs)} pairs: {len(rows)} done before, {len(pending)} to run; "
        f"{method.name}, {sizes}, {used} ({why})"
    )
    progress = BatchProgress(len(jobs), len(rows), log)
    stylist = Stylist(vgg_weights, config, method) if pending else None
    for group in chunks(pending, images_per_batch):
        for row in run_group(stylist, group, config, on_step=progress.step):
            rows[row["pair"]] = row
            write_manifest(out, ordered_rows(rows, jobs, old))
            progress.pair_done(row)
    write_manifest(out, ordered_rows(rows, jobs, old))
    _remove_row_files(out)
    return [rows[job.name] for job in jobs]


def _remove_row_files(output_dir):
    for row_file in (Path(output_dir) / ROWS_DIR).glob("*.json"):
        row_file.unlink(missing_ok=True)


def summary(rows, output_dir):
    counts = {status: sum(r["status"] == status for r in rows) for status in ("ok", "failed", "skipped")}
    text = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"Batch done: {text}; manifest: {Path(output_dir) / MANIFEST}", counts["failed"]
