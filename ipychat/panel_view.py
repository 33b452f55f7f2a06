"""The chat panel's widget: the state it shares with the page, and the
messages it exchanges with it; what the panel does lives in ``panel.py``.

The page side is one anywidget ES module (no front-end build step, no
extension of our own): ``static/messages.js`` (the message list) then
``static/panel.js`` (the controls), joined here, and ``static/panel.css``. The synced
state holds the controls and the status only, a few hundred bytes however
long the chat: messages go as custom messages, a whole list when a view
says hello (it has just been drawn) and then one message per change.

Page → kernel: ``hello``, ``ask`` (text), ``stop``, ``new``, ``export``,
``models``. Kernel → page: ``sync`` (every message), ``upsert`` (one
message, or the parts of it that changed), ``asked`` (whether a question was
taken, so the page empties its box only then).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, List, Tuple

import anywidget
import traitlets as t

from .targets import routes_to_emulator

STATIC = Path(__file__).parent / "static"
CSS_CLASS = "ipychat-panel"  # the root element's class, in the ES module
HINT = ("API keys come from environment variables (OPENAI_API_KEY, ANTHROPIC_API_KEY, "
        "OPENASSISTANT_SESSION_TOKEN); the panel has no key field.")
EMULATOR_PLACEHOLDER = "emulator (demo)"
DEFAULT_TEMPERATURE = 0.7
#: Reasoning effort choices; "" leaves it to the model.
REASONING_CHOICES = ("", "off", "low", "medium", "high")
#: The most model names kept for the dropdown (servers of aggregators list thousands).
MAX_MODELS = 1000


def provider_label(info, demo: bool) -> str:
    """Dropdown text: the name plus where it answers from and what it needs."""
    tags = []
    if routes_to_emulator(info.name, demo):
        tags.append("emulator")
    elif not info.working:
        tags.append("offline")
    if info.needs_auth:
        tags.append("needs auth")
    return f"{info.name} ({', '.join(tags)})" if tags else info.name


def provider_choices(infos: Iterable, demo: bool) -> List[Tuple[str, str]]:
    return [(provider_label(info, demo), info.name) for info in infos]


class PanelView(anywidget.AnyWidget):
    """The panel's synced state and its side of the conversation with the page."""

    _esm = "\n".join((STATIC / name).read_text(encoding="utf-8")
                      for name in ("messages.js", "panel.js"))
    _css = STATIC / "panel.css"

    #: [label, name] of every provider, for the dropdown.
    providers = t.List(t.List(t.Unicode())).tag(sync=True)
    provider = t.Unicode().tag(sync=True)
    model = t.Unicode().tag(sync=True)
    #: The server's models (the dropdown of the model box) and how that list went.
    models = t.List(t.Unicode()).tag(sync=True)
    models_note = t.Unicode().tag(sync=True)
    base_url = t.Unicode().tag(sync=True)
    base_url_placeholder = t.Unicode("provider default").tag(sync=True)
    temperature = t.Float(DEFAULT_TEMPERATURE).tag(sync=True)
    #: 0: the provider's default.
    max_tokens = t.Int(0).tag(sync=True)
    reasoning = t.Enum(REASONING_CHOICES, default_value="").tag(sync=True)
    system = t.Unicode().tag(sync=True)
    #: Whose conversation this is, in words (the notebook's, or the panel's own).
    scope = t.Unicode().tag(sync=True)
    hint = t.Unicode(HINT).tag(sync=True)
    status = t.Unicode().tag(sync=True)
    status_kind = t.Unicode("info").tag(sync=True)
    #: The names of the tools the model may call (``ChatPanel(tools=...)``).
    tool_names = t.List(t.Unicode()).tag(sync=True)
    #: An answer of this conversation streams (Send is off), and it is this panel's (Stop is on).
    busy = t.Bool(False).tag(sync=True)
    stoppable = t.Bool(False).tag(sync=True)

    def __init__(self, infos: Iterable, demo: bool, **kwargs):
        self.demo = demo
        infos = list(infos)
        self._infos = {info.name: info for info in infos}
        super().__init__(providers=[list(c) for c in provider_choices(infos, demo)], **kwargs)
        self.on_msg(self._received)

    @t.validate("temperature")
    def _clamp_temperature(self, proposal):
        return min(max(float(proposal["value"]), 0.0), 2.0)

    @t.validate("max_tokens")
    def _no_negative_limit(self, proposal):
        return max(int(proposal["value"]), 0)

    @t.validate("models")
    def _bounded_models(self, proposal):
        return list(proposal["value"])[:MAX_MODELS]

    @property
    def status_text(self) -> str:
        return self.status

    def show_status(self, text: str, kind: str = "info") -> None:
        with self.hold_sync():
            self.status, self.status_kind = text, kind

    def refill(self, name: str) -> None:
        """Model and base URL back to ``name``'s defaults; the old model list goes."""
        info = self._infos[name]
        with self.hold_sync():
            self.model = info.model or ""
            self.models, self.models_note = [], ""
            if routes_to_emulator(name, self.demo):
                self.base_url, self.base_url_placeholder = "", EMULATOR_PLACEHOLDER
            else:
                self.base_url, self.base_url_placeholder = info.base_url or "", "provider default"

    def post(self, kind: str, **fields) -> None:
        """One custom message to every view of the panel."""
        self.send({"kind": kind, **fields})

    def _received(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and isinstance(content.get("kind"), str):
            self.on_page(content["kind"], content)

    def on_page(self, kind: str, content: dict) -> None:
        """What the page asked for; ``ChatPanel`` answers."""
        raise NotImplementedError
