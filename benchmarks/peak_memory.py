"""This process's peak resident memory, for the benchmarks that report it (no torch, no Django)."""
from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """Linux's VmHWM: the high-water mark of this process's own memory map (reset by writing 5 to
    /proc/self/clear_refs). ru_maxrss is the fallback elsewhere; on Linux it is carried over fork and exec
    from the parent, so it is only an upper bound for a child."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
