"""`python -m bench.profile FILE`: where a service's CPU went, from a py-spy raw profile.

Record one while `make bench` runs (py-spy is not a dependency: `pip install py-spy`):
`py-spy record -p <pid of the service> -d 20 -r 50 -f raw -o email.prof`. Prints, over the
samples where the event loop was not idle waiting, the share of each function with what it
calls (inclusive) and on its own (self).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def idle(frames: list[str]) -> bool:
    """The loop waiting in select/epoll: no work to do.

    Under uvloop the wait is in C and py-spy (without --idle) leaves out a thread blocked in
    epoll, so the samples ending in asyncio's `Runner.run` are uvloop's own C work (socket
    reads and writes, callbacks): busy, not idle."""
    return any("selectors.py" in f and "select" in f for f in frames[-2:])


def summarise(path: Path, top: int) -> str:
    inclusive: Counter[str] = Counter()
    alone: Counter[str] = Counter()
    busy = waiting = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames, n = stack.split(";"), int(count)
        if idle(frames):
            waiting += n
            continue
        busy += n
        alone[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{busy} busy samples, {waiting} idle", "-- inclusive"]
    lines += [f"{n / busy:6.1%} {f[:140]}" for f, n in inclusive.most_common(top)]
    lines.append("-- self")
    lines += [f"{n / busy:6.1%} {f[:140]}" for f, n in alone.most_common(top // 2)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    print(summarise(args.file, args.top))


if __name__ == "__main__":
    main()
