"""scipy's L-BFGS-B as a generator of iterates, so it can drive `stylize()` like Adam does."""

import queue
import threading

import numpy as np


def iterates(fun, x0, bounds, iterations, history):
    """Run L-BFGS-B in a worker thread and yield `(x, is_last)` after each of its iterations.

    Args:
      fun: x (float64, flat) -> (value, gradient), as `scipy.optimize.minimize(jac=True)` takes.
      x0: starting point (flat float64), clipped into `bounds`.
      bounds: (n, 2) array of lower and upper bounds.
      iterations: most iterations to run; L-BFGS may stop sooner (then `is_last` says so).
      history: number of corrections kept (`maxcor`).

    Yields:
      (x, is_last): the iterate as float64 and whether it is the final one. Closing the
      generator stops the worker at its next iteration.
    """
    stop, results = threading.Event(), queue.Queue(maxsize=2)

    def callback(intermediate_result):
        if stop.is_set():
            raise StopIteration  # scipy >= 1.11 ends the minimisation cleanly
        results.put(("x", np.array(intermediate_result.x)))

    def work():
        import scipy.optimize

        try:
            start = np.clip(x0, bounds[:, 0], bounds[:, 1])
            options = {
                "maxiter": iterations,
                "maxcor": history,
                "maxfun": 4 * iterations,
                "ftol": 0.0,
                "gtol": 0.0,
            }
            scipy.optimize.minimize(
                fun, start, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback, options=options
            )
            results.put(("done", None))
        except BaseException as e:  # handed to the consumer, which raises it
            results.put(("error", e))

    worker = threading.Thread(target=work, daemon=True, name="lbfgs")
    worker.start()
    try:
        yield from _one_behind(results)
    finally:
        stop.set()
        while worker.is_alive():  # let the worker reach its next callback and stop
            try:
                results.get(timeout=0.1)
            except queue.Empty:
                pass


def _one_behind(results):
    """Hold each iterate until the next message arrives, so the last one is known as last."""
    pending = None
    while True:
        kind, value = results.get()
        if kind == "error":
            raise value
        if pending is not None:
            yield pending, kind == "done"
        if kind == "done":
            return
        pending = value
