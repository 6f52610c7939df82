"""The batch as an Apache Beam pipeline (`pip install 'nst_tf[beam]'`): `python -m nst_tf.app.beam`.

Same flags, names, manifest and settings hash as `nst_tf.app.batch`, so either can resume the
other's work. Each pair is one element; a DoFn loads the weights and builds VGG-19 once in
`setup()`. Files go through `apache_beam.io.filesystems.FileSystems` (local, gs://, s3://, ...
with the matching Beam extra), each written to a temporary name and renamed onto its final,
pair-derived name, so a retried bundle overwrites the same file and no reader sees half of one.
"""

import json
import logging
import os
import shutil
import tempfile
import uuid
from pathlib import Path, PurePosixPath

from nst_tf import images, methods
from nst_tf.app import batch, report
from nst_tf.errors import NstError, SettingError
from nst_tf.nets import weights


class BeamMissingError(SettingError, ImportError):
    """Apache Beam is not installed: an ImportError, told in one line by the command line."""


logging.disable(logging.WARNING)  # Beam warns at import about Google Cloud clients it may not need
try:
    import apache_beam as beam
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError:
    raise BeamMissingError(
        "runner", "a Beam {setting} needs Apache Beam: pip install 'nst_tf[beam]' (or use {setting} local)"
    )
finally:
    logging.disable(logging.NOTSET)

RAW = CompressionTypes.UNCOMPRESSED  # never guess a compression from a file name
DEFAULT_RUNNER = "DirectRunner"


# --- files through FileSystems ---------------------------------------------------------------


def is_local(path):
    return FileSystems.get_scheme(str(path)) is None


def open_file(path, mode="rb"):
    """`open` for `batch.file_digest`: a readable file on any Beam file system."""
    return FileSystems.open(str(path), compression_type=RAW)


def read_bytes(path):
    with open_file(path) as f:
        return f.read()


def write_bytes(path, data):
    """Write `data` to a temporary name beside `path`, then rename it onto `path` (replacing it)."""
    folder, name = FileSystems.split(str(path))
    tmp = FileSystems.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    with FileSystems.create(tmp, compression_type=RAW) as f:
        f.write(data)
    FileSystems.rename([tmp], [str(path)])


def local_copy(path, folder):
    """`path` itself if local, else a copy in `folder` (same base name: formats go by suffix)."""
    if path is None or is_local(path):
        return path
    target = os.path.join(folder, PurePosixPath(str(path)).name)
    Path(target).write_bytes(read_bytes(path))
    return target


def expand(value, setting):
    """`batch.expand` for any file system: folders (remote ones end in /), globs, files."""
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    if all(is_local(item) for item in items):
        return batch.expand(value, setting)
    found = []
    for item in items:
        found += batch.expand(item, setting) if is_local(item) else _match(item, setting)
    return list(dict.fromkeys(found))


def _match(item, setting):
    if PurePosixPath(item).suffix.lower() in batch.IMAGE_SUFFIXES and not any(c in item for c in "*?["):
        return [item]
    pattern = item if any(c in item for c in "*?[") else FileSystems.join(item, "*")
    found = sorted(
        m.path
        for m in FileSystems.match([pattern])[0].metadata_list
        if batch.is_image_name(PurePosixPath(m.path))
    )
    if not found:
        raise SettingError(setting, f"{item!r} holds or matches no image")
    return found


# --- the manifest ----------------------------------------------------------------------------


def row_path(output_dir, name):
    return FileSystems.join(str(output_dir), batch.ROWS_DIR, f"{name}.json")


def load_manifest(output_dir):
    """`batch.load_manifest` through FileSystems: manifest.csv, then rows of unfinished runs."""
    return batch.load_manifest(
        output_dir,
        read_text=lambda path: read_bytes(path).decode() if FileSystems.exists(path) else None,
        row_files=lambda out: [m.path for m in FileSystems.match([row_path(out, "*")])[0].metadata_list],
        join=FileSystems.join,
    )


def write_manifest(new_rows, output_dir, jobs, done, old):
    """The final step: the whole manifest, written once; then the per-pair rows are removed."""
    rows = {**done, **{row["pair"]: row for row in new_rows}}
    write_bytes(
        FileSystems.join(str(output_dir), batch.MANIFEST),
        batch.manifest_text(batch.ordered_rows(rows, jobs, old)).encode(),
    )
    leftovers = [m.path for m in FileSystems.match([row_path(output_dir, "*")])[0].metadata_list]
    if leftovers:
        FileSystems.delete(leftovers)


# --- the pipeline ----------------------------------------------------------------------------


class StylizeFn(beam.DoFn):
    """Stylise one pair (a `batch.Job`); yields its manifest row. The weights and the method's engine
    load once per DoFn instance, in `setup()`; prepared styles are kept across the pairs it processes.
    The method travels by name: the worker looks it up in its own registry."""

    def __init__(self, method_name, config, weights_path, output_dir):
        self.method_name, self.config = method_name, config
        self.weights_path, self.output_dir = weights_path, str(output_dir)

    def setup(self):
        self.tmp = tempfile.mkdtemp(prefix="nst_tf_beam-")
        path = local_copy(self.weights_path, self.tmp)
        vgg_weights = weights.resolve_weights(path, log=logging.info)
        self.stylist = batch.Stylist(vgg_weights, self.config, methods.get(self.method_name))

    def load(self, path):
        """`images.load_image` for any file system; errors name the original path."""
        if is_local(path):
            return images.load_image(path)
        try:
            copy = local_copy(path, self.tmp)
        except OSError as e:
            raise NstError(f"{path} cannot be read ({e})")
        try:
            return images.load_image(copy)
        except NstError as e:
            raise NstError(str(e).replace(copy, path))
        finally:
            Path(copy).unlink(missing_ok=True)

    def process(self, job):
        for row in batch.run_group(self.stylist, [job], self.config, save=write_bytes, load=self.load):
            write_bytes(row_path(self.output_dir, row["pair"]), json.dumps(row).encode())
            logging.info("%s: %s in %ss %s", row["pair"], row["status"], row["wall_s"], row["error"])
            yield row

    def teardown(self):
        shutil.rmtree(getattr(self, "tmp", ""), ignore_errors=True)


def weights_sha256(path, log=print):
    """The SHA-256 the local batch records for these weights (the file's bytes)."""
    if path is None or is_local(path):
        return weights.resolve_weights(path, log=log).sha256
    return batch.file_digest(path, open_file)


def build(pipeline, output_dir, config, weights_path, jobs, done, old, method_name=methods.DEFAULT):
    """Add the batch to `pipeline`: pairs -> StylizeFn -> the manifest."""
    pending = [job for job in jobs if job.name not in done]
    rows = (
        pipeline
        | "Pairs" >> beam.Create(pending)
        | "Spread" >> beam.Reshuffle()
        | "Stylize" >> beam.ParDo(StylizeFn(method_name, config, weights_path, output_dir))
    )
    _ = (
        rows
        | "Collect" >> beam.combiners.ToList()
        | "Manifest" >> beam.Map(write_manifest, str(output_dir), jobs, done, old)
    )


def _runner(name):
    """The Beam runner; DirectRunner is pinned to its in-process FnApiRunner implementation.

    Since Beam 2.68 the Python DirectRunner first tries Prism, which it downloads from the
    internet; offline that fails and falls back to FnApiRunner anyway. Pinning it skips the
    download attempt (what Beam's own tests do, apache/beam#34612).
    """
    if name == "DirectRunner":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return name


def run_pipeline(
    pairs,
    output_dir,
    config,
    weights_path=None,
    fmt="jpg",
    runner=DEFAULT_RUNNER,
    options=(),
    log=print,
    method=None,
):
    """Run the batch on a Beam runner; `batch.run_batch`'s arguments, less the local-only ones.

    Args:
      runner: a Beam runner's name ("local" means DirectRunner here).
      options: more Beam pipeline options, as command-line strings.

    Returns:
      The manifest rows of this batch's pairs, in order.
    """
    method = method or methods.get()
    runner = DEFAULT_RUNNER if runner == "local" else runner
    config.validate()
    batch.check_options(config, 1, False, method)
    output_dir = str(report.prepare_output_dir(output_dir)) if is_local(output_dir) else str(output_dir)
    io_functions = {"join": FileSystems.join, "open_file": open_file}
    sha256 = weights_sha256(weights_path, log)
    jobs = batch.plan_jobs(pairs, output_dir, config, sha256, fmt, method=method, **io_functions)
    old = load_manifest(output_dir)
    done, pending = batch.split_done(jobs, old, FileSystems.exists)
    log(f"{len(jobs)} pairs: {len(done)} done before, {len(pending)} to run on {runner}; {method.name}")
    with beam.Pipeline(runner=_runner(runner), options=PipelineOptions(options)) as pipeline:
        build(pipeline, output_dir, config, weights_path, jobs, done, old, method.name)
    rows = load_manifest(output_dir)
    return [rows[job.name] for job in jobs if job.name in rows]
