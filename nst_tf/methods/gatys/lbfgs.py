"""scipy's L-BFGS-B as a generator of iterates, so it can drive `stylize()` like Adam does."""

import queue
import threading

import numpy as np

from nst_tf import blas


def iterates(fun, x0, bounds, iterations, history):
    """Run L-BFGS-B in a worker thread and yield `(x, stop)` after each of its iterations.

    Args:
      fun: x (float64, flat) -> (value, gradient), as `scipy.optimize.minimize(jac=True)` takes.
      x0: starting point (flat float64), clipped into `bounds`.
      bounds: (n, 2) array of lower and upper bounds.
      iterations: most iterations to run; L-BFGS may stop sooner (then `is_last` says so).
      history: number of corrections kept (`maxcor`).

    Yields:
      (x, stop): the iterate as float64, and None, or for the final iterate scipy's reason for
      stopping (e.g. "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT"). Closing the generator
      stops the worker at its next iteration.
    """
    stop, results = threading.Event(), queue.Queue(maxsize=2)
    start = np.clip(x0, bounds[:, 0], bounds[:, 1])

    def callback(intermediate_result):
        if stop.is_set():
            raise StopIteration  # scipy >= 1.11 ends the minimisation cleanly
        results.put(("x", np.array(intermediate_result.x)))

    def work():
        import scipy.optimize

        try:
            options = {
                "maxiter": iterations,
                "maxcor": history,
                "maxfun": 4 * iterations,
                "ftol": 0.0,
                "gtol": 0.0,
            }
            # OpenBLAS on one thread (`nst_tf.blas`): its idle threads spin after each of L-BFGS-B's
            # vector operations and take a core from TensorFlow's gradient (0.285 -> 0.248 s an
            # iteration at 256 x 192, 0.96 -> 0.91 s at 512 x 384: bench/blas_threads.py)
            with blas.one_thread():
                result = scipy.optimize.minimize(
                    fun, start, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback, options=options
                )
            results.put(("done", str(result.message)))
        except BaseException as e:  # handed to the consumer, which raises it
            results.put(("error", e))

    worker = threading.Thread(target=work, daemon=True, name="lbfgs")
    worker.start()
    try:
        yield from _one_behind(results, start)
    finally:
        stop.set()
        while worker.is_alive():  # let the worker reach its next callback and stop
            try:
                results.get(timeout=0.1)
            except queue.Empty:
                pass


def _one_behind(results, start):
    """Hold each iterate until the next message arrives, so the last one is known as last.

    If L-BFGS-B stops before its first iteration (the start is already optimal: a zero
    projected gradient), the start itself is the final iterate.
    """
    pending = None
    while True:
        kind, value = results.get()
        if kind == "error":
            raise value
        if kind == "done" and pending is None:
            pending = np.array(start)
        if pending is not None:
            yield pending, (value if kind == "done" else None)
        if kind == "done":
            return
        pending = value
