"""Share of the machine's CPU taken by other processes during a measurement, from /proc/stat."""

import os


def _busy_and_total_seconds():
    """CPU-seconds (all cores) spent busy and in total since boot, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]  # user .. steal; guest is inside user
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


def _own_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Meter:
    """Context manager measuring how busy the other processes kept the CPU.

    After the block, `others` is the CPU time used by everything but this process (and its
    waited-for children) as a share of all cores' time: 0.0 on an idle machine, 0.5 when another
    process kept one of two cores busy throughout. None where /proc/stat cannot be read.
    """

    others = None

    def __enter__(self):
        self._start = (_busy_and_total_seconds(), _own_seconds())
        return self

    def __exit__(self, *exc):
        start_stat, start_own = self._start
        end_stat = _busy_and_total_seconds()
        if start_stat is None or end_stat is None:
            return False
        busy, total = end_stat[0] - start_stat[0], end_stat[1] - start_stat[1]
        if total > 0:
            self.others = round(max(0.0, busy - (_own_seconds() - start_own)) / total, 3)
        return False
