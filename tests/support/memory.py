"""A process's peak resident memory, read from /proc (Linux), for resource tests."""

from __future__ import annotations

from pathlib import Path

__all__ = ["peak_memory", "reset_peak_memory"]


def peak_memory(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in bytes since `reset_peak_memory`."""
    status = Path(f"/proc/{pid}/status").read_text()
    [line] = [line for line in status.splitlines() if line.startswith("VmHWM:")]
    return int(line.split()[1]) * 1024


def reset_peak_memory(pid: int) -> int:
    """Make the peak the current resident memory (Linux 4.0 and later); returns it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return peak_memory(pid)
