"""The chat panel's widgets and their look; what they do lives in ``panel.py``.

Styling uses JupyterLab's CSS variables only, so the panel follows the light
and dark themes; every row wraps and every control may shrink, so it fits a
narrow window.
"""

from __future__ import annotations

import html
from typing import Iterable, List, Tuple

import ipywidgets as widgets

from .render import bundle
from .targets import routes_to_emulator

CSS_CLASS = "ipychat-panel"
HINT = ("API keys come from environment variables (OPENAI_API_KEY, ANTHROPIC_API_KEY, "
        "OPENASSISTANT_SESSION_TOKEN); the panel has no key field.")
EMULATOR_PLACEHOLDER = "emulator (demo)"
DEFAULT_TEMPERATURE = 0.7

# Scoped to the panel's own class so it cannot restyle the rest of the notebook.
STYLE = f"""<style>
.{CSS_CLASS} {{
  box-sizing: border-box; padding: 8px 10px; gap: 4px;
  border: var(--jp-border-width) solid var(--jp-border-color2); border-radius: 4px;
  background: var(--jp-layout-color1); color: var(--jp-ui-font-color1);
}}
.{CSS_CLASS} .ipychat-hint {{ color: var(--jp-ui-font-color2); font-size: var(--jp-ui-font-size0); }}
.{CSS_CLASS} .ipychat-hint .widget-html-content,
.{CSS_CLASS} .ipychat-status .widget-html-content {{ line-height: 1.4; white-space: normal; }}
.{CSS_CLASS} .ipychat-status-busy {{ color: var(--jp-brand-color1); }}
.{CSS_CLASS} .ipychat-status-done {{ color: var(--jp-success-color1); }}
.{CSS_CLASS} .ipychat-status-error {{ color: var(--jp-error-color1); }}
.{CSS_CLASS} .ipychat-answer:has(.jp-OutputArea-child) {{
  padding: 0 8px; border-left: 3px solid var(--jp-brand-color2);
  background: var(--jp-layout-color0);
}}
.{CSS_CLASS} .ipychat-prompt textarea {{ min-height: 4.5em; }}
</style>"""


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


def _grow(basis: str) -> widgets.Layout:
    return widgets.Layout(flex=f"1 1 {basis}", width="auto", min_width="0")


def _fill() -> widgets.Layout:
    # "auto" and not "100%" inside the panel: the column stretches each part to the
    # panel's width minus its margins, where 100% plus margins would stick out.
    return widgets.Layout(width="auto")


def _row(children) -> widgets.HBox:
    return widgets.HBox(children, layout=widgets.Layout(flex_flow="row wrap", width="auto"))


class PanelView(widgets.VBox):
    """Every widget of the panel, laid out, plus the ways to show things in them."""

    def __init__(self, infos: Iterable, demo: bool):
        self.demo = demo
        infos = list(infos)
        self._infos = {info.name: info for info in infos}
        wide = {"description_width": "initial"}
        self.provider = widgets.Dropdown(options=provider_choices(infos, demo),
                                         description="Provider", style=wide, layout=_grow("240px"))
        self.model = widgets.Text(description="Model", placeholder="provider default",
                                  style=wide, layout=_grow("180px"))
        self.base_url = widgets.Text(description="Base URL", style=wide, layout=_grow("240px"))
        self.temperature = widgets.FloatSlider(DEFAULT_TEMPERATURE, min=0.0, max=2.0, step=0.05,
                                               description="Temperature", style=wide,
                                               layout=_grow("240px"))
        self.system = widgets.Text(description="System prompt", placeholder="optional",
                                   style=wide, layout=_grow("240px"))
        self.prompt = widgets.Textarea(placeholder="Ask a question, then press Send.",
                                       layout=_fill())
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          icon="paper-plane", tooltip="Send the question")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop the answer that is streaming")
        self.status = widgets.HTML()
        self.status_text = ""
        # An Output whose `outputs` trait is replaced whole on each flush, not an HTML
        # widget: JupyterLab's Markdown renderer then shows the answer exactly like %%chat
        # (code highlighting, math), and safe_markdown has already defused raw HTML. An
        # HTML widget would need our own Markdown-to-HTML step and set innerHTML directly.
        self.answer = widgets.Output(layout=_fill())
        self.history = widgets.Output(layout=_fill())
        self._history_box = widgets.Accordion([self.history], selected_index=None,
                                              layout=_fill())
        self._tag()
        super().__init__(self._children(),
                         layout=widgets.Layout(width="100%", align_items="stretch"))
        self.add_class(CSS_CLASS)
        self.provider.observe(lambda change: self.refill(change["new"]), "value")

    def _tag(self) -> None:
        """Classes for the stylesheet and for browser tests to find each part."""
        for name in ("provider", "model", "base_url", "temperature", "system", "prompt",
                     "status", "answer"):
            getattr(self, name).add_class(f"ipychat-{name.replace('_', '-')}")
        self.send_button.add_class("ipychat-send")
        self.stop_button.add_class("ipychat-stop")

    def _children(self) -> list:
        style = widgets.HTML(STYLE, layout=widgets.Layout(display="none"))
        hint = widgets.HTML(html.escape(HINT), layout=_fill())
        hint.add_class("ipychat-hint")
        buttons = _row([self.send_button, self.stop_button])
        return [style, _row([self.provider, self.model, self.base_url]),
                _row([self.temperature, self.system]), hint, self.prompt, buttons,
                self.status, self.answer, self._history_box]

    def refill(self, name: str) -> None:
        """Model and base URL back to ``name``'s defaults."""
        info = self._infos[name]
        self.model.value = info.model or ""
        if routes_to_emulator(name, self.demo):
            self.base_url.value, self.base_url.placeholder = "", EMULATOR_PLACEHOLDER
        else:
            self.base_url.value, self.base_url.placeholder = info.base_url or "", "provider default"

    def show_status(self, text: str, kind: str = "info") -> None:
        self.status_text = text
        self.status.value = (f'<span class="ipychat-status-{kind}">{html.escape(text)}</span>')

    def show_answer(self, data: dict, index: int = 0) -> None:
        """Show ``data`` as output ``index`` of the answer (0 starts a new answer)."""
        self.answer.outputs = self.answer.outputs[:index] + (_display_data(data),)

    @property
    def answer_text(self) -> str:
        return "".join(output["data"]["text/plain"] for output in self.answer.outputs)

    def show_history(self, conversation) -> None:
        count = len(conversation.turns)
        self._history_box.set_title(0, f"Conversation so far ({count} turn"
                                       f"{'' if count == 1 else 's'})")
        self.history.outputs = (_display_data(bundle(history_markdown(conversation),
                                                     "markdown")),)

    def set_busy(self, busy: bool) -> None:
        # One answer at a time: the next question needs this one in the history first.
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy


def history_markdown(conversation) -> str:
    parts = [f"**You:**\n\n{turn.prompt}\n\n**{turn.provider}:**\n\n{turn.text}"
             for turn in conversation.turns]
    return "\n\n---\n\n".join(parts) or "*No turns yet.*"


def _display_data(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}
