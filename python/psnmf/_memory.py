"""Memory guard: a clear MemoryError before an allocation that cannot fit.

Without it, a cube too large for the machine gets the process killed by the
kernel's out-of-memory killer, with no message. The available memory is
Linux's MemAvailable (or the free physical pages elsewhere), capped by a cgroup
v2 memory limit when one applies (containers, batch jobs).
"""

from __future__ import annotations

import os

_CGROUP = "/sys/fs/cgroup"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _cgroup_available() -> int | None:
    try:
        with open(f"{_CGROUP}/memory.max") as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(f"{_CGROUP}/memory.current") as f:
            return max(int(limit) - int(f.read().strip()), 0)
    except (OSError, ValueError):
        return None


def available_memory() -> int | None:
    """Bytes that can be allocated without swapping, or None when unknown."""
    known = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(known) if known else None


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check_allocation(n_bytes: int, what: str) -> None:
    """Raise MemoryError if ``n_bytes`` exceed the available memory.

    Parameters
    ----------
    n_bytes : int
        Estimated size of the allocation(s) about to be made, in bytes.
    what : str
        What is being allocated, for the message (e.g. "the CSR working copy of X").
    """
    available = available_memory()
    if available is not None and n_bytes > available:
        raise MemoryError(
            f"not enough memory for {what}: it needs {format_bytes(n_bytes)} ({n_bytes} bytes) "
            f"but only "
            f"{format_bytes(available)} is available; use a smaller region, a sparse "
            "input, or a machine with more memory"
        )
