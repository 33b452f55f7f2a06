"""At most one update per interval, however fast the pieces come.

``StreamView`` paces the output of an answer and ``session`` paces what a
conversation tells its listeners with the same rule (shared/DESIGN.md): the
first update at once, later ones at most one per ``interval``, and a trailing
one so the last piece is never held back. Pure: no I/O, no event loop; the
caller hands in ``schedule(delay, callback)`` (e.g. ``loop.call_later``).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

#: Updating may take at most 1/SLOW_SHARE of the time between updates.
SLOW_SHARE = 4


class Pacer:
    """When the next update may go; runs a trailing ``callback`` once it may.

    Without ``schedule`` nothing is armed: what waits goes at the next
    ``wait() <= 0`` the caller checks (a new piece, a ``tick()``, the end).
    """

    def __init__(self, interval: float, schedule: Optional[Callable] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self._gap = interval  # grows when updating is slow (see ``ran``)
        self._schedule = schedule
        self._clock = clock
        self._last = float("-inf")
        self._timer = None

    def wait(self) -> float:
        """Seconds until the next update may go (0 or less: now)."""
        return self._last + self._gap - self._clock()

    def arm(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the interval has passed, unless armed already."""
        if self._timer is None and self._schedule is not None:
            self._timer = self._schedule(max(self.wait(), 0.0), lambda: self._fire(callback))

    def _fire(self, callback) -> None:
        self._timer = None
        callback()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def start(self) -> float:
        """Note that an update starts; hand the result to ``ran``."""
        self.disarm()
        return self._clock()

    def ran(self, started: float) -> None:
        """An update that began at ``started`` is done.

        A long answer costs more to render and send each time. Once that cost
        passed the interval, every piece would update again (a 5 MB answer
        then never ends): keep updating under 1/SLOW_SHARE of the time.
        """
        self._last = self._clock()
        self._gap = max(self.interval, SLOW_SHARE * (self._last - started))
