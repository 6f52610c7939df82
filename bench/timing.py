"""Helpers shared by the benches and both sides of bench_step (the TF process and the torch worker):
per-call timing and what the machine is."""

import time
from pathlib import Path


def cpuinfo_field(field):
    """The first value of `field` in /proc/cpuinfo, or "" where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


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
