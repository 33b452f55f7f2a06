"""What the panel's page keeps, without a browser: every custom message the
panel sends, applied the way ``ipychat/static/messages.js`` applies it.

    page = Page(panel)      # says hello, as a view does once drawn
    panel.ask("hi"); ...
    page.texts()            # what each message shows, in order

A test can then compare the page's messages, built from small updates, with
the panel's whole messages (``panel.messages()``): the updates lose nothing.
"""

from __future__ import annotations

import json
import threading
from typing import Dict, List


class Page:
    def __init__(self, panel, hello: bool = True):
        self.panel = panel
        self.sent: List[dict] = []  # every custom message, in order
        self.messages: Dict[str, dict] = {}
        self.changed = threading.Condition()
        panel.send = self._receive  # the widget's own send: one custom message
        if hello:
            self.say("hello")

    def say(self, kind: str, **fields) -> None:
        """A message from the page, through the widget's own handler."""
        self.panel._handle_custom_msg({"kind": kind, **fields}, [])

    def _receive(self, content, buffers=None) -> None:
        with self.changed:
            self.sent.append(content)
            if content["kind"] == "sync":
                self.messages = {}
                for message in content["messages"]:
                    self._upsert(message)
            elif content["kind"] == "upsert":
                self._upsert(content["message"])
            self.changed.notify_all()

    def _upsert(self, message: dict) -> None:
        known = self.messages.setdefault(message["id"], {"parts": []})
        parts, first = message.get("parts"), message.get("from", 0)
        known.update({k: v for k, v in message.items() if k not in ("parts", "from")})
        if parts is not None:
            known["parts"] = known["parts"][:first] + parts

    def ordered(self) -> List[dict]:
        return list(self.messages.values())

    def texts(self) -> List[str]:
        """What each message shows (its Markdown), in order."""
        return ["".join(m["parts"]) for m in self.ordered()]

    def upserts(self) -> List[dict]:
        return [c["message"] for c in self.sent if c["kind"] == "upsert"]

    @staticmethod
    def size(content: dict) -> int:
        """Bytes of one custom message as JSON (what goes on the wire)."""
        return len(json.dumps(content, ensure_ascii=False).encode())
