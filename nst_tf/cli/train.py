"""`python -m nst_tf.train --method wct --level 3 --data MANIFEST --out DIR`: train a fast method's network.

Its flags are `TrainOptions`' fields (defaults and help from there) plus `--resume`, kept in their
own `FlagValues` so they never clash with `nst_tf.run`'s. Bad input is one line and exit status 2;
Ctrl-C or SIGTERM saves the run and exits 130 with the command that continues it.
"""

import dataclasses
import signal
import sys

from nst_tf import quiet

quiet.tensorflow()  # first, with its start-up messages held back

# isort: split
from absl import flags, logging  # noqa: E402

from nst_tf.errors import NstError, one_line_exit  # noqa: E402
from nst_tf.train import session  # noqa: E402
from nst_tf.train.options import TrainOptions, flag_type  # noqa: E402

FLAGS = flags.FlagValues()


def define_flags(options=TrainOptions(), flag_values=FLAGS):
    """A flag per field of `TrainOptions` (its defaults, its help), and `--resume`."""
    for field in dataclasses.fields(options):
        default, text = getattr(options, field.name), field.metadata["help"]
        kind = flag_type(field)
        if kind is int:
            flags.DEFINE_integer(field.name, default, text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(field.name, default, text, flag_values=flag_values)
        else:
            flags.DEFINE_string(field.name, default, text, flag_values=flag_values)
    flags.DEFINE_bool(
        "resume", False, "Continue the run in --out from its last saved state.", flag_values=flag_values
    )


define_flags()


def given():
    """The settings flags the user gave."""
    return [f.name for f in dataclasses.fields(TrainOptions) if FLAGS[f.name].present]


def options_from_flags():
    return TrainOptions(**{f.name: FLAGS[f.name].value for f in dataclasses.fields(TrainOptions)})


def eta_text(seconds):
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class ProgressLine:
    """The progress line: losses, s/it (this session, the traced first step left out) and the ETA."""

    def __init__(self, out=sys.stderr, every=10):
        self.out, self.every, self.timed, self.n = out, every, 0.0, 0

    def __call__(self, step):
        if not step.first:
            self.timed, self.n = self.timed + step.seconds, self.n + 1
        rate = self.timed / self.n if self.n else step.seconds
        losses = ", ".join(f"{name} {value:.4g}" for name, value in step.losses.items())
        text = f"[{step.iteration}/{step.iterations}] {losses}  {rate:.3g} s/it, ETA "
        text += eta_text(rate * (step.iterations - step.iteration))
        if self.out.isatty():
            self.out.write(f"\r{text}\033[K" + ("\n" if step.iteration == step.iterations else ""))
        elif step.first or step.iteration % self.every == 0 or step.iteration == step.iterations:
            self.out.write(text + "\n")
        self.out.flush()


def main(argv):
    if len(argv) > 1:
        raise NstError(f"unexpected argument {argv[1]!r}; flags look like --data=MANIFEST")
    options = options_from_flags()
    show = ProgressLine(every=options.log_every)
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    if FLAGS.resume:
        return session.resume(options, given(), log=log, show=show)
    return session.train(options, log=log, show=show)


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM saves and exits like Ctrl-C


def resume_command():
    keep = ("method", "level", "out")
    given = [f"--{n}={FLAGS[n].value}" for n in keep if FLAGS[n].value is not None]  # adain: no level
    return "python -m nst_tf.train " + " ".join(given) + " --resume"


def entry(argv=None):
    """Parse the flags, train; NstError one line and 2, Ctrl-C/SIGTERM 130 (after saving)."""
    signal.signal(signal.SIGTERM, _terminate)
    argv = sys.argv if argv is None else argv
    if {"--help", "-h", "--helpfull"} & set(argv[1:]):
        print(f"{__doc__}\nFlags:\n{FLAGS.get_help()}")
        sys.exit(0)
    try:
        rest = FLAGS(argv)
    except flags.Error as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)
    try:
        with one_line_exit():
            main(rest)
    except session.Interrupted as e:
        print(f"\n{e}; continue with: {resume_command()}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print("\ninterrupted before training started; nothing to resume", file=sys.stderr)
        sys.exit(130)
