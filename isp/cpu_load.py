"""How busy other processes kept this process's CPUs while something was timed: the busy time of the CPUs this
process may run on, from Linux's /proc/stat (proc(5): user, nice, system, irq, softirq, steal — idle and iowait
excluded; guest time is inside user), minus this process's own CPU time (`os.times`), over the wall time — in
cores. Work in other threads of this process (the app's crop updates) counts as our own, so it is not flagged.

Why it matters: when other processes and our threads together want more cores than there are, a network on
several PyTorch threads waits at every thread barrier for a descheduled thread, which stretches a small network's
many short kernels far more than a heavy network's few long ones. With a 2-thread trainer on this 2-core machine,
one 512 px denoise stage on 2 threads measured 24–450 ms for the searched network against 670–1290 ms for the
heavy (ratio 2.8–28× within a minute), while on one thread the two took a steady 15 and 923 ms (62×): on one
thread the load inflates every time alike, so ratios of models timed in turn still hold. None where /proc/stat
does not exist (not Linux), or when the stretches measured add up to less than `MIN_WALL_S`: the kernel counts
in 10 ms ticks, so a short stretch reads ± a few tenths of a core.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

BUSY_FIELDS = (0, 1, 2, 5, 6, 7)      # user, nice, system, irq, softirq, steal in /proc/stat's cpu lines
OVERSUBSCRIBED_MARGIN = 0.25          # cores of tick noise allowed before other load + our threads count as too many
MIN_WALL_S = 1.0                      # shorter measurements are too coarse to judge (10 ms ticks)
LOAD_NOTE_PREFIX = "Other processes kept"
_STAT = Path("/proc/stat")


def usable_cpus() -> set[int] | None:
    """The CPUs this process may run on (its affinity), or None where the OS does not say."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def usable_cores() -> int:
    cpus = usable_cpus()
    return len(cpus) if cpus else (os.cpu_count() or 1)


def cpus_busy_seconds(cpus: set[int] | None = None) -> float | None:
    """CPU seconds the given CPUs (default: this process's usable ones; all when unknown) have been busy since
    boot, or None where /proc/stat is missing or unreadable."""
    cpus = usable_cpus() if cpus is None else cpus
    try:
        lines = _STAT.read_text().splitlines()
    except OSError:
        return None
    ticks, found = 0, False
    for line in lines:
        fields = line.split()
        if not fields or not fields[0].startswith("cpu") or fields[0] == "cpu":
            continue
        try:
            index = int(fields[0][3:])
        except ValueError:
            continue
        if cpus is None or index in cpus:
            ticks += sum(int(fields[1 + i]) for i in BUSY_FIELDS if 1 + i < len(fields))
            found = True
    if not found:
        return None
    return ticks / float(os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def own_cpu_seconds() -> float:
    """This process's user + system CPU seconds (all its threads)."""
    t = os.times()
    return t.user + t.system


class LoadMeter:
    """Other processes' load over one or more timed stretches: `with meter: …` (any number of times), then
    `meter.cores` — their average busy cores over all the stretches together, None if unmeasurable or shorter
    than `min_wall_s` in total. busy, own, clock: the readings (tests pass fakes)."""

    def __init__(self, busy=cpus_busy_seconds, own=own_cpu_seconds, clock=time.perf_counter,
                 min_wall_s: float = MIN_WALL_S) -> None:
        self._read = (busy, own, clock)
        self.min_wall_s = min_wall_s
        self.other_seconds = 0.0       # CPU seconds other processes used during the stretches
        self.wall_seconds = 0.0
        self.unknown = False           # a reading failed: the figure is None
        self._start = None

    def _now(self):
        busy, own, clock = self._read
        return busy(), own(), clock()

    def __enter__(self) -> "LoadMeter":
        self._start = self._now()
        return self

    def __exit__(self, *exc) -> None:
        (busy0, own0, wall0), (busy1, own1, wall1) = self._start, self._now()
        if busy0 is None or busy1 is None:
            self.unknown = True
            return
        self.other_seconds += (busy1 - busy0) - (own1 - own0)
        self.wall_seconds += max(0.0, wall1 - wall0)

    def add(self, other: "LoadMeter") -> None:
        """Fold another meter's stretches into this one (e.g. one per photo of a benchmark)."""
        self.other_seconds += other.other_seconds
        self.wall_seconds += other.wall_seconds
        self.unknown = self.unknown or other.unknown

    @property
    def cores(self) -> float | None:
        if self.unknown or self.wall_seconds < self.min_wall_s:
            return None
        return max(0.0, self.other_seconds / self.wall_seconds)

    @property
    def reported(self) -> float | None:
        """`cores` rounded to 2 decimals, as reports and JSON show it."""
        return None if self.cores is None else round(self.cores, 2)


def oversubscribed(cores: float | None, threads: int) -> bool:
    """Did other processes' load plus our `threads` want more than the usable cores (beyond tick noise)?"""
    return cores is not None and cores + threads > usable_cores() + OVERSUBSCRIBED_MARGIN


def ratios_unreliable(cores: float | None, threads: int) -> bool:
    """Time ratios between networks are unreliable: oversubscribed while timing on several threads (on one thread
    the load stretches every model alike; see the module docstring)."""
    return threads > 1 and oversubscribed(cores, threads)


def busy_warning(cores: float | None, what: str, threads: int) -> str | None:
    """A note for reports when other processes' load and our `threads` together oversubscribed the CPU during
    `what`; it starts with LOAD_NOTE_PREFIX."""
    if not oversubscribed(cores, threads):
        return None
    head = (f"{LOAD_NOTE_PREFIX} {cores:.2f} of the {usable_cores()} usable CPU cores busy while {what} on "
            f"{threads} thread{'s' if threads != 1 else ''}: ")
    if ratios_unreliable(cores, threads):
        return head + ("measured times, and above all the time ratios between big and small networks, are "
                       "unreliable — re-measure on a quiet machine.")
    return head + "measured times are inflated; ratios of models timed in turn on one thread are less affected."
