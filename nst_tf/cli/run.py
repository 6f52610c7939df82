"""`python -m nst_tf.run --content louvre.jpg --style monet.jpg`: one image, any method, from flags."""

import signal
import sys

from absl import app, flags, logging

from nst_tf import images, methods, quiet
from nst_tf.cli import flags as cli_flags
from nst_tf.errors import Interrupted, NstError, SettingError, one_line_exit

FLAGS = flags.FLAGS

RESUME_FLAGS = ("iterations", "precision")  # what --resume may change: more steps, another number format


def resume_main(out):
    """`--resume OUT`: the same run, continued from its last saved state."""
    named = ("content", "style", "weights", "preset", "method")
    given = cli_flags.given_settings() + [name for name in named if FLAGS[name].present]
    fixed = [name for name in given if name not in RESUME_FLAGS]
    if fixed:
        raise SettingError("resume", f"{{setting}} takes its settings from {out}/run.json; drop --{fixed[0]}")
    changes = {name: cli_flags.setting_value(name) for name in RESUME_FLAGS if FLAGS[name].present}
    app_single().resume(out, changes, FLAGS.tensorboard_dir)


def app_single():
    """`nst_tf.app.single`, imported once the flags, files and settings are known good (TensorFlow
    quietly first)."""
    quiet.tensorflow()
    from nst_tf.app import single

    return single


def main(argv):
    logging.set_verbosity(logging.WARNING)  # TensorFlow's checkpoint saver logs at INFO
    if len(argv) > 1:
        raise NstError(f"unexpected argument {argv[1]!r}; flags look like --content=FILE")
    if FLAGS.resume:
        return resume_main(FLAGS.resume)
    if not FLAGS.style:
        raise SettingError("style", "{setting} is required; give an image file (e.g. {setting}=swirls.jpg)")
    content = images.find_image(FLAGS.content, "content")
    styles = [images.find_image(name.strip(), "style") for name in FLAGS.style.split(",")]
    settings = cli_flags.settings_from_flags(cli_flags.method_from_flags())
    single = app_single()
    method = methods.get(FLAGS.method)
    single.run(
        content, styles, FLAGS.output_dir, settings, FLAGS.weights, FLAGS.tensorboard_dir, method=method
    )


def parse_flags(argv):
    """absl's flag parsing, but a bad flag is one line and exit status 2."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM saves and exits like Ctrl-C


def entry(main_function=main, interrupted="before the optimisation started; nothing was written"):
    """absl's app.run with the project's exits: NstError one line and 2; Ctrl-C/SIGTERM 130."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        with one_line_exit():
            app.run(main_function, flags_parser=parse_flags)
    except Interrupted as e:
        how = f"; continue with: python -m nst_tf.run --resume {e.output_dir}" if e.resumable else ""
        print(f"\n{e}{how}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    entry()
