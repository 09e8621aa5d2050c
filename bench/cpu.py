"""CPU seconds a process used so far (Linux /proc), to say where the time of a run went."""

from __future__ import annotations

import os


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        # After the command name (in parentheses, may hold spaces): utime and stime are
        # fields 14 and 15 of the line, in clock ticks.
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
