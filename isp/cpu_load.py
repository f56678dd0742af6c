"""How busy other processes kept the CPU while something was timed: all cores' busy time from Linux's /proc/stat
(proc(5): user, nice, system, irq, softirq, steal — idle and iowait excluded) minus this process's own CPU time
(`os.times`), divided by the wall time — in cores.

Why it matters: on a shared machine a neighbour (a training job) stretches a small network's many short kernels
far more than a heavy network's few long ones — each PyTorch thread barrier waits for a descheduled thread. With
a 2-thread trainer running on this 2-core machine, one 512 px denoise stage on 2 PyTorch threads measured 24–450
ms for the searched network against 670–1290 ms for the heavy (ratio 2.8–28× within a minute), while on one
thread the two networks took a steady 15 and 923 ms (62×): time ratios are only worth quoting when this figure is
near zero. None where /proc/stat does not exist (not Linux).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

BUSY_FIELDS = (0, 1, 2, 5, 6, 7)      # user, nice, system, irq, softirq, steal in /proc/stat's "cpu" line
BUSY_CORES_WARNING = 0.25             # other processes' average load (cores) above which timings are flagged
_STAT = Path("/proc/stat")


def all_cores_busy_seconds() -> float | None:
    """CPU seconds every process together has been busy since boot, or None where /proc/stat is missing."""
    try:
        fields = _STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return sum(int(fields[1 + i]) for i in BUSY_FIELDS if 1 + i < len(fields)) / float(ticks)


def own_cpu_seconds() -> float:
    """This process's user + system CPU seconds (all its threads)."""
    t = os.times()
    return t.user + t.system


class OtherLoad:
    """Measure other processes' load over a stretch of code: `with OtherLoad() as load: …`, then `load.cores`
    (None where it cannot be measured). Resolution is the kernel's clock tick (10 ms), so stretches shorter than
    about a second read coarsely. busy, own, clock: the readings (tests pass fakes)."""

    def __init__(self, busy=all_cores_busy_seconds, own=own_cpu_seconds, clock=time.perf_counter) -> None:
        self.cores: float | None = None
        self._read = (busy, own, clock)
        self._start: tuple[float | None, float, float] | None = None

    def _now(self) -> tuple[float | None, float, float]:
        busy, own, clock = self._read
        return busy(), own(), clock()

    def __enter__(self) -> "OtherLoad":
        self._start = self._now()
        return self

    def __exit__(self, *exc) -> None:
        busy0, own0, wall0 = self._start
        busy1, own1, wall1 = self._now()
        if busy0 is None or busy1 is None or wall1 <= wall0:
            return
        self.cores = max(0.0, ((busy1 - busy0) - (own1 - own0)) / (wall1 - wall0))


def busy_warning(cores: float | None, what: str) -> str | None:
    """A sentence for reports when other processes kept ≥ BUSY_CORES_WARNING cores busy during `what`."""
    if cores is None or cores < BUSY_CORES_WARNING:
        return None
    return (f"Other processes kept {cores:.1f} of {os.cpu_count()} CPU cores busy while {what}: measured times, "
            "and above all the time ratios between big and small networks, are unreliable — re-measure on a quiet "
            "machine.")
