"""Many images: every content x style pair, resumable, with a manifest; `python -m nst_tf.batch`.

`python -m nst_tf.batch --content DIR_OR_GLOB --style DIR_OR_GLOB --output_dir OUT` (or `--pairs
pairs.csv`) writes `OUT/<content-stem>__<style-stem>.jpg` for every pair and `OUT/manifest.csv`,
rewritten atomically after each pair. A rerun skips the pairs whose output exists and whose
manifest row has the same settings hash, so an interrupted batch resumes where it stopped. Every
flag of `nst_tf.run` applies. The VGG model is built once per batch, each style's targets are
computed once, and Adam's step is traced once; the images are those `nst_tf.run` makes (docs/batch.md).
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

from absl import flags

from nst_tf import run as cli  # first: defines nst_tf.run's flags and imports TensorFlow quietly

# isort: split
import numpy as np
import tensorflow as tf
from PIL import Image

from nst_tf import files, images, optimize, precision, report, weights
from nst_tf.errors import NstError
from nst_tf.vgg import build_vgg

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MANIFEST = "manifest.csv"
ROWS_DIR = ".manifest_rows"  # per-pair rows a Beam run leaves before it writes the manifest
MANIFEST_HEADER = (
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
DONE = ("ok", "skipped")
PREVIOUS = "previous"
HASH_IGNORES = ("save_every",)  # settings that do not change the output image
# Settings added after manifests existed, with the value every earlier run had: left out of the
# hash at that value, so the pairs of older manifests still count as done.
NEWER_FIELDS = {"precision": "float32"}

FLAGS = flags.FLAGS


def define_flags():
    """The batch's own flags (`nst_tf.run` defines the rest); once, also when run as __main__."""
    if "pairs" in FLAGS:
        return
    flags.DEFINE_string(
        "pairs", None, "CSV with a content,style header: run these pairs (not content x style)."
    )
    flags.DEFINE_integer(
        "images_per_batch", 1, "Optimise this many pairs together as one (N, H, W, 3) image (Adam only)."
    )
    flags.DEFINE_string(
        "runner",
        "local",
        "local (this process), or a Beam runner: DirectRunner, DataflowRunner, ... (nst_tf[beam]).",
    )
    flags.DEFINE_string(
        "first_init", None, "With --init previous: where the first frame starts (default: the preset's init)."
    )
    flags.DEFINE_enum("format", "jpg", ["jpg", "png"], "Format of the output images.")
    flags.DEFINE_string(
        "pipeline_options", "", "More Beam options, e.g. '--project=P --region=R --temp_location=gs://B/tmp'."
    )


define_flags()


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


def expand(value, flag):
    """Image paths of `--content`/`--style`: folders, globs, files (bare names from images/), comma-separated.

    Raises:
      NstError: naming `flag`, when a folder or glob holds no image.
    """
    found = []
    for item in (part.strip() for part in (value or "").split(",")):
        if item:
            found += _expand_one(item, flag)
    if not found:
        raise NstError(f"--{flag} is required; give a folder, a glob such as 'frames/*.png', or image files")
    return list(dict.fromkeys(found))


def _expand_one(item, flag):
    path = Path(item)
    if path.is_dir():
        found = sorted(str(p) for p in path.iterdir() if is_image_name(p) and p.is_file())
        what = f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {item}"
    elif glob.has_magic(item):
        found = sorted(p for p in glob.glob(item) if Path(p).is_file())  # glob skips hidden files
        what = f"{item!r} matches no file"
    else:
        return [str(cli.find_image(item, flag))]
    if not found:
        raise NstError(f"--{flag}: {what}")
    return found


def is_image_name(path):
    """An image by its suffix, not hidden (the temporary files of atomic writes are); any PurePath."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_pairs(path):
    """(content, style) paths from a CSV with a `content,style` header; relative to the CSV's folder.

    Raises:
      NstError: the file is missing or has no content and style columns.
    """
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise NstError(f"--pairs {path}: cannot read it ({e.strerror})")
    if not rows or not {"content", "style"} <= set(rows[0]):
        raise NstError(f"--pairs {path}: needs a header line 'content,style' and one row per pair")
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


def settings_hash(config, weights_sha256, content_digest, style_digest, fmt):
    """16 hex digits over what decides the output image: settings, weights, both inputs, format."""
    settings = {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if k not in HASH_IGNORES and NEWER_FIELDS.get(k, object()) != v
    }
    record = {
        "config": settings,
        "weights": weights_sha256,
        "content": content_digest,
        "style": style_digest,
        "format": fmt,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan_jobs(pairs, output_dir, config, weights_sha256, fmt="jpg", previous=False, **io_functions):
    """A Job per (content, style) pair, in order; the settings hash of each.

    Args:
      pairs: (content, style) paths.
      output_dir: where the outputs go.
      config: the batch's Config; with `previous`, its init is the first frame's.
      weights_sha256: the weights file's SHA-256.
      fmt: "jpg" or "png".
      previous: each content starts from the previous content's output with the same style.
      **io_functions: `join` and `open_file` for other file systems (Beam's FileSystems).

    Raises:
      NstError: two different pairs would write the same output name.
    """
    join, open_file = io_functions.get("join", os.path.join), io_functions.get("open_file", open)
    pairs = list(dict.fromkeys(pairs))
    _check_names(pairs)
    hashed = dataclasses.replace(config, init=f"{PREVIOUS}, first {config.init}") if previous else config
    digests = {path: file_digest(path, open_file) for path in {p for pair in pairs for p in pair}}
    jobs, last_output = [], {}
    for content, style in pairs:
        name = pair_name(content, style)
        output = join(str(output_dir), f"{name}.{fmt}")
        digest = settings_hash(hashed, weights_sha256, digests[content], digests[style], fmt)
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


def job_row(job, status, wall=0.0, result_costs=None, error=""):
    """The manifest row (all text) of a job."""
    c = result_costs or {}
    return {
        "pair": job.name,
        "content": job.content,
        "style": job.style,
        "output": job.output,
        "settings_hash": job.settings_hash,
        "status": status,
        "wall_s": f"{wall:.2f}",
        "total": f"{c['total']:.9g}" if c else "",
        "content_cost": f"{c['content']:.9g}" if c else "",
        "style_cost": f"{c['style']:.9g}" if c else "",
        "error": " ".join(str(error).split()),  # one line
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def parse_manifest(text, where=MANIFEST):
    """{pair: row} from a manifest's text.

    Raises:
      NstError: the text is not an nst_tf manifest.
    """
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != MANIFEST_HEADER:
        raise NstError(f"{where}: not an nst_tf batch manifest; move it away or choose another --output_dir")
    return {row["pair"]: row for row in reader}


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
    images.atomic_write(path, lambda tmp: Path(tmp).write_text(manifest_text(rows)))
    return path


# --- the optimisation, shared by every pair of a batch ---------------------------------------


def group_cost(model, a_C, targets, config):
    """`cost(image)` for n images (n, H, W, 3): a list of each image's (J, J_content, J_style).

    Per image, exactly `optimize.make_cost_fn`'s cost; `a_C` and `targets` hold, per image,
    {layer: content activations} and {layer: style target}. VGG treats the images of a batch
    independently, so minimising the sum gives each image its own cost's gradient.
    """
    n = len(a_C)

    def one(image, a_G, i):
        pick = (lambda t: t) if n == 1 else (lambda t: t[i : i + 1])
        return optimize.cost_terms(
            {l: pick(a) for l, a in a_G.items()}, pick(image), a_C[i], targets[i], config
        )

    def cost(image):
        a_G = model(image)
        return [one(image, a_G, i) for i in range(n)]

    return cost


def summed(cost):
    """`group_cost`'s costs summed over the images; for one image, exactly its own (J, J_content, J_style)."""

    def total(image):
        return tuple(tf.add_n(list(values)) for values in zip(*cost(image)))

    return total


NOT_FINITE_HINT = f"; likely cause: {optimize.NOT_FINITE_HINT}"


@dataclasses.dataclass
class Result:
    """One pair's outcome: the image to save (1, H, W, 3) and its costs, or why there is none."""

    image: np.ndarray | None
    costs: dict | None
    failure: str | None = None


class AdamGroup:
    """Adam on n images at once, as `optimize.Stylizer` runs it on one; the variables are made once
    and reassigned for each group, so the train step is traced once per batch, not once per pair."""

    def __init__(self, model, config):
        self.model, self.config, self.train_step = model, config, None

    def _build(self, start, a_C, targets):
        self.image = tf.Variable(start, name="image")
        self.done = tf.Variable(0, dtype=tf.int64, name="iterations_done")
        self.a_C = tf.nest.map_structure(tf.Variable, a_C)
        self.targets = tf.nest.map_structure(tf.Variable, targets)
        self.cost = group_cost(self.model, self.a_C, self.targets, self.config)
        self.adam = optimize.Adam(self.image, self.config.learning_rate)
        ema = self.config.ema
        self.average = optimize.Average(self.image, ema) if ema else None
        self.train_step = optimize.make_train_step(
            summed(self.cost), self.image, self.adam, self.done, self.average
        )
        self.evaluate = tf.function(self.cost)

    def _load(self, start, a_C, targets):
        if self.train_step is None:
            return self._build(start, a_C, targets)
        self.image.assign(start)
        tf.nest.map_structure(lambda v, t: v.assign(t), (self.a_C, self.targets), (a_C, targets))
        extra = (self.average.sum, self.average.weight) if self.average is not None else ()
        for state in (self.done, self.adam.m, self.adam.v, self.adam.t, *extra):
            state.assign(tf.zeros_like(state))

    def run(self, problems, a_C, targets, on_step=None):
        """Optimise the problems together; a Result per problem."""
        self._load(np.concatenate([p.start for p in problems]), a_C, targets)
        for i in range(self.config.iterations):
            J, ok = self.train_step()
            if not bool(ok):
                failure = f"{optimize.not_finite(i, J)}{NOT_FINITE_HINT}"
                return [Result(None, None, failure) for _ in problems]
            if on_step is not None:
                on_step(i)
        shown = self.average.value() if self.average is not None else tf.convert_to_tensor(self.image)
        per_image, image = self.evaluate(shown), shown.numpy()
        return [
            Result(p.output(image[i : i + 1]), _costs_dict(*per_image[i])) for i, p in enumerate(problems)
        ]


def _costs_dict(J, J_content, J_style):
    return {"total": float(J), "content": float(J_content), "style": float(J_style)}


@dataclasses.dataclass
class Loaded:
    """A job with its images read and prepared, ready to optimise."""

    job: Job
    content: np.ndarray
    style: np.ndarray
    config: optimize.Config
    problem: optimize.Problem
    seconds: float


class Stylist:
    """One batch's weights, VGG-19 (built once), style targets (once per style) and traced Adam steps.

    With Adam, `stylize()` gives the images `optimize.stylize` gives for the same images and
    settings (same costs, same updates), several pairs at a time if asked. L-BFGS runs go
    through `optimize.stylize` itself, one pair at a time, with the weights loaded once.
    """

    def __init__(self, vgg_weights, config):
        needed = sorted({layer for layer, _ in config.content_layers + config.style_layers})
        self.precision = precision.resolve(config.precision)  # on a Beam worker: that machine's answer
        self.model = build_vgg(vgg_weights, config.pooling, outputs=needed, precision=self.precision)
        self.weights, self.config = vgg_weights, config
        self._targets, self._groups = {}, {}

    def style_targets(self, key, problem):
        """The problem's style targets, cached by `key` unless they depend on the content (colours)."""
        if self.config.preserve_colors != "none":
            return optimize.style_targets(self.model, problem.styles, problem.blend, self.config)
        if key not in self._targets:
            self._targets[key] = optimize.style_targets(
                self.model, problem.styles, problem.blend, self.config
            )
        return self._targets[key]

    def content_targets(self, problem):
        out = self.model(tf.constant(problem.content))
        return {layer: out[layer] for layer, _ in self.config.content_layers}

    def stylize(self, loaded, on_step=None):
        """Optimise the Loaded items (together, with Adam); a Result for each."""
        if self.config.optimizer != "adam":
            return [self._one_by_one(item, on_step) for item in loaded]
        problems = [item.problem for item in loaded]
        a_C = [self.content_targets(p) for p in problems]
        targets = [self.style_targets(item.job.style, item.problem) for item in loaded]
        group = self._groups.setdefault(len(problems), AdamGroup(self.model, self.config))
        return group.run(problems, a_C, targets, on_step)

    def _one_by_one(self, item, on_step):
        last = None
        for last in optimize.stylize(item.content, [item.style], self.weights, item.config):
            if on_step is not None:
                on_step(last.iteration)
        failure = f"{last.failure}{NOT_FINITE_HINT}" if last.failure else None
        return Result(None if failure else last.image, last.costs, failure)


# --- running jobs ----------------------------------------------------------------------------


def encode_image(image, fmt):
    """The bytes `images.save_image` writes for a (1, H, W, 3) image: JPEG quality 95, or PNG."""
    buffer = io.BytesIO()
    pixels = Image.fromarray(images.deprocess(image))
    if fmt in ("jpg", "jpeg"):
        pixels.save(buffer, "JPEG", quality=95)
    else:
        pixels.save(buffer, "PNG")
    return buffer.getvalue()


def save_local(path, data):
    """Write an output atomically.

    Raises:
      NstError: it cannot be written (a full disk, say), which ends the batch.
    """
    try:
        images.atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    except OSError as e:
        raise NstError(
            f"cannot write {path} ({e.strerror or e}); free some space or choose another --output_dir"
        )


def job_config(job, config, exists=os.path.exists):
    """The job's Config: starting from the previous frame's output when there is one."""
    if job.init_from and exists(job.init_from):
        return dataclasses.replace(config, init=job.init_from)
    return config


def load_job(job, config, load=images.load_image):
    """Read and prepare a job's images (`optimize.prepare`).

    Raises:
      NstError: an image cannot be read or the settings do not fit it.
    """
    start = time.perf_counter()
    content, style = load(job.content), load(job.style)
    config = job_config(job, config).validate()
    problem = optimize.prepare(content, [style], config)
    return Loaded(job, content, style, config, problem, time.perf_counter() - start)


def one_line(error, limit=400):
    """An exception as the manifest's one-line error: NstError's message, else `Type: message`, cut."""
    text = str(error) if isinstance(error, NstError) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_group(stylist, jobs, config, save=save_local, load=images.load_image, on_step=None):
    """Stylise some jobs together and save their images; a manifest row per job.

    A bad image or a failed optimisation gives a "failed" row with a one-line error; only
    an error saving an output (from `save`) is raised.
    """
    rows, ready = [], []
    for job in jobs:
        start = time.perf_counter()
        try:
            ready.append(load_job(job, config, load))
        except NstError as e:
            rows.append(job_row(job, "failed", time.perf_counter() - start, error=one_line(e)))
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
            rows.append(job_row(item.job, "failed", wall, error=result.failure))
            continue
        save(item.job.output, encode_image(result.image, Path(item.job.output).suffix.lstrip(".").lower()))
        rows.append(job_row(item.job, "ok", wall, result.costs))
    return rows


class BatchProgress:
    """Pairs done / total with an ETA: a line per pair, and the current step on a terminal."""

    def __init__(self, total, done, log=print, out=sys.stderr):
        self.total, self.done, self.log, self.out = total, done, log, out
        self.walls = []

    def eta(self):
        if not self.walls:
            return "?"
        return cli.duration(sum(self.walls) / len(self.walls) * (self.total - self.done))

    def step(self, i, iterations):
        if self.out.isatty():
            self.out.write(f"\r[{self.done}/{self.total} pairs] step {i + 1}/{iterations}, ETA {self.eta()} ")
            self.out.flush()

    def pair_done(self, row):
        self.done += 1
        self.walls.append(float(row["wall_s"]))
        if self.out.isatty():
            self.out.write("\r\033[K")
        what = f"J = {float(row['total']):.4g}" if row["status"] == "ok" else row["error"]
        self.log(
            f"[{self.done}/{self.total}] {row['pair']}: {row['status']} in {float(row['wall_s']):.1f}s, "
            f"{what} (batch ETA {self.eta()})"
        )


# Settings `nst_tf.run` honours that the batch's engine does not (yet): one scale, untiled. Refused
# with one line rather than accepted and silently ignored.
UNSUPPORTED = (("scales", 1), ("tile_size", 0), ("max_memory", 0.0))


def check_supported(config):
    """Raise NstError naming the first setting the batch would otherwise ignore."""
    for name, default in UNSUPPORTED:
        value = getattr(config, name)
        if value != default:
            raise NstError(
                f"--{name}={value}: nst_tf.batch runs every pair at one scale, untiled, so it cannot honour "
                f"this yet; leave it out, or run nst_tf.run per image"
            )


def check_options(config, images_per_batch, previous):
    """Raise NstError for options that cannot go together."""
    check_supported(config)
    if images_per_batch < 1:
        raise NstError(f"--images_per_batch={images_per_batch}: must be at least 1")
    if images_per_batch > 1 and config.optimizer != "adam":
        raise NstError("--images_per_batch > 1 needs --optimizer adam (L-BFGS runs one image at a time)")
    if images_per_batch > 1 and previous:
        raise NstError("--init previous needs --images_per_batch 1: each frame waits for the one before")


def chunks(items, n):
    return [items[i : i + n] for i in range(0, len(items), n)]


def run_batch(
    pairs, output_dir, config, weights_path=None, images_per_batch=1, previous=False, fmt="jpg", log=print
):
    """Stylise every (content, style) pair into `output_dir`, skipping pairs already done.

    Args:
      pairs: (content path, style path) pairs, in order.
      output_dir: folder for `<content-stem>__<style-stem>.<fmt>` and `manifest.csv`.
      config: Config for every pair; with `previous`, its init is the first frame's.
      weights_path: VGG-19 weights file (None: `weights.resolve_weights`' default).
      images_per_batch: pairs optimised together as one (N, H, W, 3) image.
      previous: `--init previous`: each content starts from the output of the content before it.
      fmt: "jpg" or "png".
      log: called with one-line messages.

    Returns:
      The manifest rows of this batch's pairs, in order.
    """
    config.validate()
    check_options(config, images_per_batch, previous)
    used, why = precision.describe(config.precision)
    config = dataclasses.replace(config, precision=used)  # in the settings hash as used
    out = report.prepare_output_dir(output_dir, len(pairs) * config.width * config.height * 3)  # raw RGB
    vgg_weights = weights.resolve_weights(weights_path, log=log)
    jobs = plan_jobs(pairs, out, config, vgg_weights.sha256, fmt, previous)
    old = load_manifest(out)
    rows, pending = split_done(jobs, old, os.path.exists)
    log(
        f"{len(jobs)} pairs: {len(rows)} done before, {len(pending)} to run; "
        f"{config.width}x{config.height}, {used} ({why})"
    )
    progress = BatchProgress(len(jobs), len(rows), log)
    stylist = Stylist(vgg_weights, config) if pending else None
    on_step = lambda i: progress.step(i, config.iterations)  # noqa: E731
    for group in chunks(pending, images_per_batch):
        for row in run_group(stylist, group, config, on_step=on_step):
            rows[row["pair"]] = row
            write_manifest(out, ordered_rows(rows, jobs, old))
            progress.pair_done(row)
    write_manifest(out, ordered_rows(rows, jobs, old))
    _remove_row_files(out)
    return [rows[job.name] for job in jobs]


def _remove_row_files(output_dir):
    for row_file in (Path(output_dir) / ROWS_DIR).glob("*.json"):
        row_file.unlink(missing_ok=True)


# --- command line ----------------------------------------------------------------------------


def pairs_from_flags(expand_flag=expand):
    """The batch's (content, style) pairs: `--pairs`, else every `--content` x `--style`."""
    if FLAGS.pairs:
        if FLAGS.content or FLAGS.style:
            raise NstError("--pairs replaces --content and --style; give one or the other")
        return read_pairs(FLAGS.pairs)
    return every_pair(expand_flag(FLAGS.content, "content"), expand_flag(FLAGS.style, "style"))


def config_from_flags():
    """(Config, previous): `nst_tf.run`'s settings, with `--init previous` taken out."""
    previous = FLAGS.init == PREVIOUS
    if previous:
        FLAGS.init = FLAGS.first_init or optimize.PRESETS[FLAGS.preset].init
    elif FLAGS.first_init:
        raise NstError("--first_init goes with --init previous")
    return cli.config_from_flags(), previous


def summary(rows, output_dir):
    counts = {status: sum(r["status"] == status for r in rows) for status in ("ok", "failed", "skipped")}
    text = ", ".join(f"{n} {status}" for status, n in counts.items())
    return f"Batch done: {text}; manifest: {Path(output_dir) / MANIFEST}", counts["failed"]


def main(argv):
    if len(argv) > 1:
        raise NstError(f"unexpected argument {argv[1]!r}; flags look like --content=FOLDER")
    config, previous = config_from_flags()  # run_batch and Beam's run_pipeline refuse UNSUPPORTED
    if FLAGS.tensorboard_dir:
        raise NstError("--tensorboard_dir applies to nst_tf.run; a batch writes costs to its manifest")
    if FLAGS.resume:
        raise NstError("--resume applies to nst_tf.run; to resume a batch, run the same command again")
    if FLAGS.runner != "local":
        from nst_tf import beam_pipeline  # NstError when Apache Beam is not installed

        return beam_pipeline.run_from_flags(config, previous)
    pairs = pairs_from_flags()
    rows = run_batch(
        pairs, FLAGS.output_dir, config, FLAGS.weights, FLAGS.images_per_batch, previous, FLAGS.format
    )
    text, failed = summary(rows, FLAGS.output_dir)
    print(text)
    return 1 if failed else 0


def entry(main_function=main):
    """Run `main_function` under absl; NstError is one line and exit status 2; failed pairs exit 1."""
    cli.entry(main_function, interrupted="finished pairs are kept; run the same command again to resume")


if __name__ == "__main__":
    entry()
