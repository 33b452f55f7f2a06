"""The emulator's record of every request it served, with each one's fate.

Written from the server's thread, read from tests in another: every change
goes through one condition, so a reader can wait for it (bounded).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Optional

#: Headers whose values are secrets: logged by name only.
SECRET_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "x-goog-api-key",
})
HIDDEN = "(hidden)"


def visible_headers(headers) -> dict:
    return {k: (HIDDEN if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: str
    protocol: Optional[str] = None
    status: Optional[int] = None
    faults: dict = field(default_factory=dict)
    finished: bool = False
    disconnected: bool = False
    #: The server cut the connection on purpose (the ``drop`` fault).
    dropped: bool = False

    def as_json(self) -> dict:
        return asdict(self)


class RequestLog:
    def __init__(self):
        self._changed = threading.Condition()
        self._entries: List[Recorded] = []

    def add(self, recorded: Recorded) -> Recorded:
        with self._changed:
            self._entries.append(recorded)
            self._changed.notify_all()
        return recorded

    def note(self, recorded: Recorded, **changes) -> None:
        with self._changed:
            for key, value in changes.items():
                setattr(recorded, key, value)
            self._changed.notify_all()

    def entries(self) -> List[Recorded]:
        with self._changed:
            return list(self._entries)

    def as_json(self) -> List[dict]:
        with self._changed:
            return [entry.as_json() for entry in self._entries]

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds (re-checked on each change), at most ``timeout`` s."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout)
