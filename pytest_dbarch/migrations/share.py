"""Which revisions of a history one checking process round-trips, when several share it.

The history is cut into parts of consecutive revisions. Every process walks the history
from its base on a database of its own, and round-trips only the parts it claims; the
others it upgrades without checks, which costs a tenth as much. Process ``i`` starts with
part ``i``; after that, parts are claimed in order from a counter all processes of one
run share, when a process reaches the end of its last part: a process slowed by an
expensive part (a broken downgrade and its rebuild) takes fewer parts, so no split
chosen in advance has to guess the costs. A process's database only ever moves forward,
because the next free part is always further up than the one it just finished.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Sequence
from pathlib import Path


class Share:
    """The parts one process round-trips: claimed from ``counter`` as its walk reaches
    them, or a ``fixed`` set given in advance (parts a failed process left unchecked).
    ``starts``: the position where each part begins (see ``cut``)."""

    def __init__(
        self,
        starts: Sequence[int],
        *,
        counter: Path | None = None,
        first: int = 0,
        fixed: Iterable[int] = (),
        to_head: bool = False,
    ) -> None:
        self.starts = list(starts)
        self.parts = len(self.starts)
        self.first = first  # the part this process starts with (the counter starts past every first part)
        self.counter = counter
        self.fixed = sorted(set(fixed))
        self.to_head = to_head  # this process also walks on to the head (the one that checks drift)
        self.claimed: list[int] = []  # the parts this process took, in order
        self.done: list[int] = []  # the parts it walked to their end
        self._part = -1

    @staticmethod
    def cut(revisions: int, processes: int) -> list[int]:
        """Where the parts start: large first, smaller towards the head (a quarter of what
        is left per process, at least 2 revisions), so that the processes end close
        together: the last part anyone takes is short."""
        starts, position = [], 0
        while position < revisions:
            starts.append(position)
            position += max(2, -(-(revisions - position) // (4 * processes)))
        return starts

    def owns(self, position: int) -> bool | None:
        """Whether this process round-trips the revision at ``position`` (base first);
        None once every part up to the end is taken: this process has nothing left to check."""
        part = bisect.bisect_right(self.starts, position) - 1
        if part > self._part and self._part >= 0 and self._part < self.parts:
            self.done.append(self._part)
        while part > self._part and self._part < self.parts:
            self._part = self._next()
            if self._part < self.parts:
                self.claimed.append(self._part)
        if self._part >= self.parts:
            return None
        return part == self._part

    def finished(self) -> None:
        """The walk went past the last revision: the part it was in is done too."""
        if 0 <= self._part < self.parts and self._part not in self.done:
            self.done.append(self._part)

    def _next(self) -> int:
        if self.counter is not None and not self.claimed and self._part < 0:
            return self.first
        if self.counter is None:
            later = [p for p in self.fixed if p > self._part]
            return later[0] if later else self.parts
        return claim(self.counter)


def claim(counter: Path) -> int:
    """The counter's value, incremented under an exclusive lock (every process of the run
    opens the same file)."""
    import fcntl

    fd = os.open(counter, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.read(fd, 32).decode() or "0"
        value = int(text)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(value + 1).encode())
        return value
    finally:
        os.close(fd)  # closing releases the lock
