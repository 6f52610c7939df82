"""TensorFlow imported with its C++ start-up messages held back (no TensorFlow here until asked).

Commands import TensorFlow only once their flags, files and settings are checked, so a mistake is
answered at once and in one line; what imports it then calls `tensorflow()` first.
"""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def quiet_stderr():
    """Hold back what C++ writes to fd 2 (TensorFlow's CUDA probing); replay it if something fails."""
    saved, held = os.dup(2), tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    try:
        yield
    except BaseException:
        os.dup2(saved, 2)
        held.seek(0)
        sys.stderr.write(held.read().decode(errors="replace"))
        raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        held.close()


def tensorflow():
    """Import TensorFlow (once) with its C++ start-up messages held back; returns the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with quiet_stderr():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.list_logical_devices("GPU")  # device set-up prints its probing too
    return tf
