"""The project's own error: a problem the user can fix, told in one line."""


class NstError(Exception):
    """A user-facing error: bad input, unusable weights, unwritable output.

    The message is one line that names the file or flag at fault and says what to
    do. `nst_tf.run` prints it without a traceback and exits non-zero.
    """


class WeightsError(NstError):
    """A weights file is missing, truncated, of an unknown format or not VGG-19."""


class UnsafeWeightsError(WeightsError):
    """A weights file asked to run code or touch objects outside the allow-list."""
