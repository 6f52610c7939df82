"""`python -m nst_tf.batch --content DIR_OR_GLOB --style DIR_OR_GLOB --output_dir OUT` (or `--pairs CSV`).

Every settings flag of `nst_tf.run` applies to every pair; `--runner DirectRunner` (or another
Beam runner) runs the same batch as an Apache Beam pipeline (`nst_tf.app.beam`).
"""

import dataclasses
import shlex

from absl import flags

from nst_tf import methods, quiet
from nst_tf.cli import flags as cli_flags
from nst_tf.cli.run import entry as run_entry
from nst_tf.errors import NstError, SettingError

FLAGS = flags.FLAGS


def app_batch():
    """`nst_tf.app.batch` (TensorFlow quietly first), imported once the first checks are passed."""
    quiet.tensorflow()
    from nst_tf.app import batch

    return batch


def pairs_from_flags(expand=None):
    """The batch's (content, style) pairs: `--pairs`, else every `--content` x `--style`."""
    batch = app_batch()
    expand = expand or batch.expand
    if FLAGS.pairs:
        if FLAGS.content or FLAGS.style:
            raise SettingError("pairs", "{setting} replaces --content and --style; give one or the other")
        return batch.read_pairs(FLAGS.pairs)
    return batch.every_pair(expand(FLAGS.content, "content"), expand(FLAGS.style, "style"))


def settings_from_flags(method):
    """(settings, previous): `nst_tf.run`'s settings, with `--init previous` taken out (`--first_init`)."""
    previous = FLAGS["init"].present and FLAGS.init == app_batch().PREVIOUS
    if FLAGS.first_init and not previous:
        raise SettingError("first_init", "{setting} goes with --init previous")
    settings = cli_flags.settings_from_flags(method, leave_out=("init",) if previous else ())
    if previous and FLAGS.first_init:
        settings = dataclasses.replace(settings, init=FLAGS.first_init).validate()
    return settings, previous


def run_beam(method, settings, previous):
    """The batch on a Beam `--runner`; exit status 1 when a pair failed."""
    from nst_tf.app import beam  # SettingError when Apache Beam is not installed

    if previous:
        raise SettingError("init", "previous runs frame after frame; use --runner local for it")
    if FLAGS.images_per_batch != 1:
        raise SettingError(
            "images_per_batch", "applies to --runner local; Beam runs pairs in parallel instead"
        )
    rows = beam.run_pipeline(
        pairs_from_flags(beam.expand),
        FLAGS.output_dir,
        settings,
        FLAGS.weights,
        FLAGS.format,
        FLAGS.runner,
        shlex.split(FLAGS.pipeline_options),
        method=method,
    )
    return rows


def main(argv):
    if len(argv) > 1:
        raise NstError(f"unexpected argument {argv[1]!r}; flags look like --content=FOLDER")
    if FLAGS.tensorboard_dir:
        raise SettingError(
            "tensorboard_dir", "{setting} applies to nst_tf.run; a batch writes costs to its manifest"
        )
    if FLAGS.resume:
        raise SettingError(
            "resume", "{setting} applies to nst_tf.run; to resume a batch, run the same command again"
        )
    methods.spec(FLAGS.method)  # an unknown method: said before TensorFlow is imported
    batch = app_batch()
    method = methods.get(FLAGS.method)
    settings, previous = settings_from_flags(method)
    if FLAGS.runner != "local":
        rows = run_beam(method, settings, previous)
    else:
        rows = batch.run_batch(
            pairs_from_flags(),
            FLAGS.output_dir,
            settings,
            FLAGS.weights,
            FLAGS.images_per_batch,
            previous,
            FLAGS.format,
            method=method,
        )
    text, failed = batch.summary(rows, FLAGS.output_dir)
    print(text)
    return 1 if failed else 0


def entry(main_function=main):
    """Run `main_function` under absl; NstError is one line and exit status 2; failed pairs exit 1."""
    run_entry(main_function, interrupted="finished pairs are kept; run the same command again to resume")


if __name__ == "__main__":
    entry()
