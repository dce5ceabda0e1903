"""Per-worker counters the supervisor creates before forking, so each worker can see how loaded the others are.

``serve --workers N`` shares one listening socket (HTTP) and one DIMSE socket among the workers. Left to the
kernel or the event loop, the first worker to wake takes every pending connection, and four clients can land
on one process while the other core idles. Each acceptor (http_accept.py for HTTP, the DIMSE gateway's server)
publishes its worker's open connections here and leaves a new connection for a moment to a worker holding fewer.
"""

from __future__ import annotations

import mmap
import struct
import time

_SLOT = struct.Struct("=q")
# How long a worker leaves a pending connection to a less loaded one before taking it anyway.
DEFER_LIMIT = 0.02


class ConnectionShares:
    """Open-connection counts of the workers, in anonymous shared memory (created before the fork).

    Each worker writes only its own slot and reads the others'; a stale read only makes a placement less even.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._memory = mmap.mmap(-1, _SLOT.size * workers)

    def publish(self, index: int, count: int) -> None:
        _SLOT.pack_into(self._memory, index * _SLOT.size, count)

    def least_elsewhere(self, index: int) -> int | None:
        """The smallest count among the other workers (None with one worker)."""
        others = [_SLOT.unpack_from(self._memory, i * _SLOT.size)[0] for i in range(self.workers) if i != index]
        return min(others) if others else None


class Deferral:
    """When one worker's acceptor should leave a pending connection to a less loaded worker.

    It defers while it holds more open connections than some other worker, for at most DEFER_LIMIT from the
    first time it deferred this connection: a worker that does not take it in time (busy, restarting) does not
    hold it up. :meth:`reset` after an accept, or when nothing is pending.
    """

    def __init__(self, shares: ConnectionShares, index: int) -> None:
        self._shares = shares
        self._index = index
        self._since: float | None = None

    def defer(self, mine: int) -> bool:
        """True: sleep a moment and look again (a less loaded worker is taking it, or will within the limit)."""
        least = self._shares.least_elsewhere(self._index)
        if least is None or mine <= least:
            return False
        now = time.monotonic()
        self._since = self._since or now
        if now - self._since < DEFER_LIMIT:
            time.sleep(0.001)
            return True
        return False

    def reset(self) -> None:
        self._since = None
