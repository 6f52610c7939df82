"""The project's own errors: problems the user can fix, told in one line."""

import contextlib
import re
import sys


class NstError(Exception):
    """A user-facing error: bad input, unusable weights, unwritable output.

    The message is one line that names the file or setting at fault and says what to
    do. The command line prints it without a traceback and exits with status 2.
    """


class SettingsMentionedError(NstError):
    """An error whose message mentions settings by name (`settings`), which the command line
    shows as their flags (`text(lambda name: f"--{name}")`)."""

    def __init__(self, message, settings=()):
        self.message, self.settings = message, tuple(settings)
        super().__init__(message)

    def text(self, rename=None):
        """The message with every mentioned setting (a whole word) renamed, e.g. to its flag."""
        if rename is None:
            return self.message
        text = self.message
        for name in self.settings:
            text = re.sub(rf"(?<![\w-]){re.escape(name)}\b", lambda m, name=name: rename(name), text)
        return text


class SettingError(SettingsMentionedError):
    """A setting that cannot work: `setting=value: why`.

    Library code names the setting (a field of a settings dataclass, or an argument such as
    `output_dir`); the command line shows it as its flag (`--setting=value: why`). A `why`
    containing `{setting}` is the whole message, with the setting's name put in there.
    """

    def __init__(self, setting, why, value=None):
        self.setting, self.why, self.value = setting, why, value
        super().__init__(self._compose(setting), (setting,))

    def _compose(self, name):
        if "{setting}" in self.why:
            return self.why.replace("{setting}", name)
        return f"{name}={self.value}: {self.why}" if self.value is not None else f"{name}: {self.why}"

    def text(self, rename=None):
        """The message with the setting called `rename(setting)` (its flag, say) instead."""
        return self._compose(rename(self.setting)) if rename else self.message


class WeightsError(NstError):
    """A weights file is missing, truncated, of an unknown format or not VGG-19."""


class UnsafeWeightsError(WeightsError):
    """A weights file asked to run code or touch objects outside the allow-list."""


@contextlib.contextmanager
def one_line_exit():
    """For a command-line entry point: an NstError raised inside becomes `error: <its message>` on
    stderr (the settings it names shown as their flags, `--name`) and exit status 2, no traceback."""
    try:
        yield
    except SettingsMentionedError as e:
        print(f"error: {e.text(lambda name: f'--{name}')}", file=sys.stderr)
        sys.exit(2)
    except NstError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped a run (`nst_tf.app.single`); the message says what was saved,
    `resumable` whether `resume(output_dir)` can go on from it."""

    def __init__(self, message, resumable, output_dir):
        super().__init__(message)
        self.resumable, self.output_dir = resumable, output_dir
