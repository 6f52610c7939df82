"""Per-call timing shared by both sides of the bench (the TF process and the torch worker)."""

import time


def time_steps(step, untimed, iterations):
    """Seconds of each of `iterations` calls of `step`, after `untimed` calls that are not timed."""
    for _ in range(untimed):
        step()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times
