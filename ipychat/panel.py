"""``ChatPanel``: the conversation as a chat, in a widget.

A thin shell over ``session`` (Conversation), ``toolloop`` (one answer,
with the tools it may call), ``targets`` (which provider, demo routing,
model lists) and ``transcript`` (messages of safe Markdown). The panel
shows every answer of its conversation through the conversation's
watchers, its own and those of ``%%chat`` cells alike: an answer streams
from the provider into the asking shell's view, the conversation tells its
watchers (≤ ~10 times a second), and the panel sends the page that one
message, never the whole chat.

One answer at a time: Send is off while an answer of the conversation
streams, so each question is asked with the previous answer in the history.
"""

from __future__ import annotations

import asyncio
import datetime
import os
from pathlib import Path
from typing import List, Optional

from . import errors, targets
from .answer import Answer
from .panel_view import PanelView
from .providers import list_providers
from .recorder import Recorder, default_recorder
from .references import prepare
from .live import ENDED, GREW, RESET, STARTED, Collector
from .session import Conversation, Interrupted, default_conversation
from .toolloop import MAX_TOOL_ROUNDS, Tools, answer_into, as_toolbox
from .transcript import Parts, as_markdown, question, reply

READY = "Ready: type a question; Enter sends, Shift+Enter starts a new line."
EMPTY = "The question is empty: type one first."
STOPPED = "Stopped: the text so far is kept, but not added to the conversation."
STILL_BUSY = "An answer is still streaming: wait for it, or press Stop first."
CELL_ANSWERING = ("A %%chat cell is answering; it shows here as it streams "
                  "(Kernel > Interrupt stops it).")
DEMO_NOTE = " (built-in emulator, demo mode)"
SHARED = "The notebook's conversation: %%chat cells and this panel continue it."
OWN = "This panel's own conversation: %%chat cells do not see it."
#: Seconds the model list may take before the panel stops waiting for it.
MODELS_WAIT = 5.0


class Row:
    """One turn the panel shows: the answer, its id on the page, what the page has of it."""

    def __init__(self, answer: Answer, uid: str):
        self.answer, self.uid, self.parts = answer, uid, Parts()


class ChatPanel(PanelView):
    """A chat panel: the conversation as messages, a box to ask, Stop.

    ``conversation``: the chat to show and continue; by default the
    notebook's, shared with ``%%chat``. ``ChatPanel(conversation=Conversation())``
    keeps its own. ``demo``: classic providers answer from the built-in emulator.
    ``namespace``: where ``{name}`` in a question is looked up. ``recorder``:
    logs its answers and replays them (default: the one ``%%chat`` uses, so
    ``%config ChatMagics.log`` and ``%chat replay`` apply). ``tools``: the
    functions the model may call (as ``%%chat --tools``), each call shown
    under its answer; ``max_tool_rounds``: how often one answer may call them.
    """

    _unwatch = None  # stops the conversation telling this panel (set in __init__)

    def __init__(self, conversation: Optional[Conversation] = None,
                 provider: Optional[str] = None, demo: bool = True,
                 namespace: Optional[dict] = None, recorder: Optional[Recorder] = None,
                 tools: Tools = None, max_tool_rounds: int = MAX_TOOL_ROUNDS):
        self.conversation = default_conversation() if conversation is None else conversation
        self.recorder = default_recorder() if recorder is None else recorder
        self.namespace = _user_namespace() if namespace is None else namespace
        self.tools = as_toolbox(tools)  # described now: a bad one fails here, not on Send
        self.max_tool_rounds = max_tool_rounds
        super().__init__(list_providers(), demo,
                         tool_names=self.tools.names if self.tools else [])
        #: The running answer: an asyncio.Task, or a concurrent Future on ipychat's loop thread.
        self.task = None
        #: The running model-list request, likewise.
        self.models_task = None
        self._cancel = None
        self._own: Optional[Answer] = None
        self._greeted = False
        self._refilling = False
        self._fetches = 0
        self._uids = 0
        self.rows: List[Row] = [self._row(answer) for answer in self.conversation.turns]
        self.provider = self._initial_provider(provider)
        self.refill(self.provider)  # no change event when it was already selected
        self.system = self.conversation.system or ""
        self.scope = SHARED if self.conversation is default_conversation() else OWN
        self.observe(self._on_system, "system")
        self.observe(self._server_changed, ["provider", "base_url"])
        self._unwatch = self.conversation.watch(self._heard)
        self.show_status(READY)

    def _initial_provider(self, provider: Optional[str]) -> str:
        names = [name for _, name in self.providers]
        if provider is not None:
            if provider.strip().lower() not in names:
                raise errors.ProviderNotFound(provider, names)
            return provider.strip().lower()
        try:
            chosen = targets.default_name(self.demo)
        except errors.UsageError:  # no key and no demo: let the user pick
            return names[0]
        return chosen if chosen in names else names[0]

    def _row(self, answer: Answer) -> Row:
        self._uids += 1
        return Row(answer, f"t{self._uids}")

    def _on_system(self, change) -> None:
        self.conversation.system = change["new"].strip() or None

    def _server_changed(self, change) -> None:
        if self._refilling:
            return
        if change["name"] == "provider":
            self._refilling = True
            try:
                self.refill(change["new"])
            finally:
                self._refilling = False
        if self._greeted:  # a page shows the model box: fill its list
            self.fetch_models()

    def close(self) -> None:
        if self._unwatch is not None:  # None: closed, or made only half (a bad argument)
            self._unwatch()
            self._unwatch = None
        super().close()

    @property
    def last_answer(self) -> Optional[Answer]:
        return self.rows[-1].answer if self.rows else None

    def messages(self) -> List[dict]:
        """Every message the panel shows, whole, in order."""
        found = []
        for row in self.rows:
            found += [question(row.answer, row.uid), reply(row.answer, row.uid, row.parts)]
        return found

    # -- what the page asks ---------------------------------------------------

    def on_page(self, kind: str, content: dict) -> None:
        if kind == "hello":  # a view was drawn: it needs every message
            self.post("sync", messages=self.messages())
            if not self._greeted:
                self._greeted = True
                self.fetch_models()
        elif kind == "ask":
            self.post("asked", ok=self.ask(str(content.get("text", ""))))
        elif kind == "stop":
            self.stop()
        elif kind == "new":
            self.new_chat()
        elif kind == "export":
            self.export()
        elif kind == "models":
            self.fetch_models()

    def ask(self, text: str) -> bool:
        """Start answering ``text``; returns at once, True if it was taken."""
        if self.busy:
            self.show_status(STILL_BUSY, "error")
            return False
        typed = text.strip()
        if not typed:
            self.show_status(EMPTY, "error")
            return False
        try:
            # The same {references} as %%chat: the panel runs in the same kernel.
            prompt = prepare(typed, self.namespace, targets.secret_variables())
            target = self._target()
            if self.tools:
                target.check_tools()
            messages = self.conversation.messages_for(prompt.content())
            answer = target.answer(prompt.text, messages, conversation=self.conversation.id,
                                   tools=self.tools.schemas if self.tools else None)
            source = self.recorder.source(target, answer)  # the log's answer, or the model
        except errors.ChatError as err:  # e.g. replay only, and nothing recorded
            self.show_status(str(err), "error")
            return False
        via = DEMO_NOTE if target.note else ""
        with self.hold_sync():  # one state update; busy before the task runs: no second question
            self.busy = self.stoppable = True
            self.show_status(f"{target.label} is answering{via}…", "busy")
        self.task, self._cancel = _spawn(self._answer(answer, target, source, messages))
        self.task.add_done_callback(self._settle)
        return True

    def stop(self) -> None:
        """Cancel the panel's answer, from whichever thread the click arrives on."""
        if self.stoppable and self._cancel is not None:
            self.show_status("Stopping…", "busy")
            self._cancel()

    def new_chat(self) -> None:
        """Start the conversation afresh (the system prompt stays)."""
        if self.busy:
            return self.show_status(STILL_BUSY, "error")
        self.conversation.reset()
        whose = "the notebook's conversation" if self.scope == SHARED else "this panel's conversation"
        self.show_status(f"New chat: {whose} starts empty.", "done")

    def export(self, directory: Optional[str] = None) -> Optional[Path]:
        """Write the conversation shown as Markdown to a new file; say where."""
        if not self.rows:
            self.show_status("Nothing to export yet.", "error")
            return None
        text = as_markdown([row.answer for row in self.rows], self.scope, self.conversation.system)
        path = _new_file(Path(directory or os.getcwd()))
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as err:
            self.show_status(f"Could not export: {errors.one_line(str(err))}", "error")
            return None
        self.show_status(f"Exported {len(self.rows)} turns to {path}", "done")
        return path

    def _target(self):
        options = {"temperature": self.temperature, "max_tokens": self.max_tokens or None,
                   "reasoning": self.reasoning or None}
        return targets.resolve(self.provider, model=self.model.strip() or None, options=options,
                               base_url=self.base_url.strip() or None, demo=self.demo)

    # -- one answer of the panel's own ----------------------------------------

    async def _answer(self, answer: Answer, target, source, messages) -> None:
        self._own = answer
        view = self.conversation.live(answer, Collector(), asyncio.get_running_loop().call_later)
        via = DEMO_NOTE if target.note else ""
        if answer.replayed:
            via += f" (replayed from the log ({answer.replayed}))"
        secrets = target.secrets()
        tools = None if answer.replayed else self.tools  # a replay runs no tools
        view.start()
        try:
            await answer_into(source, messages, view, answer, tools,
                              max_rounds=self.max_tool_rounds)
        except asyncio.CancelledError:
            self._end(answer, STOPPED, "info", secrets)
            raise
        except Interrupted:  # Kernel > Interrupt inside a plain tool
            self._end(answer, STOPPED, "info", secrets)
        except errors.ChatError as err:
            self._end(answer, str(err), "error", secrets)
        except Exception as err:  # a bug below us must not leave the panel stuck
            self._end(answer, f"Unexpected error: {type(err).__name__}: {errors.one_line(err)}",
                      "error", secrets)
        else:
            self._end(answer, f"Done: {target.label} answered{via}.", "done", secrets)

    def _end(self, answer: Optional[Answer], status: str, kind: str, secrets=()) -> None:
        if answer is not None:
            self.conversation.record(answer)  # an incomplete answer stays out of the history
            warning = self.recorder.keep(answer, secrets)  # never raises: one line at worst
            status += f" ({warning})" if warning else ""
        self._own = None
        with self.hold_sync():
            self.stoppable = False
            self.busy = self.conversation.streaming is not None
            self.show_status(status, kind)

    def _settle(self, task) -> None:
        """A task cancelled before its first step never ran ``_answer``: tidy up here."""
        if task is self.task and self.stoppable and self._own is None:
            self._end(None, STOPPED, "info")

    # -- what the conversation tells ------------------------------------------

    def _heard(self, change: str, answer: Optional[Answer]) -> None:
        if change == RESET:
            self.rows = []
            self.post("sync", messages=[])
            return
        if change == STARTED:
            row = self._row(answer)
            self.rows.append(row)
            self.post("upsert", message=question(answer, row.uid))
            self.post("upsert", message=reply(answer, row.uid, row.parts))
            self._started(answer)
            return
        row = next((r for r in reversed(self.rows) if r.answer is answer), None)
        if row is not None and change in (GREW, ENDED):
            self.post("upsert", message=reply(answer, row.uid, row.parts, update=True))
        if change == ENDED and answer is not self._own:
            self._ended_elsewhere(answer)

    def _started(self, answer: Answer) -> None:
        with self.hold_sync():
            self.busy = True
            self.system = self.conversation.system or ""  # a %%chat -s may have changed it
            if answer is not self._own:
                self.show_status(CELL_ANSWERING, "busy")

    def _ended_elsewhere(self, answer: Answer) -> None:
        with self.hold_sync():
            self.busy = self.conversation.streaming is not None or self.stoppable
            if not self.busy:
                state = "answered" if answer.complete else f"ended ({answer.status})"
                self.show_status(f"Done: {answer.provider} {state} in a %%chat cell.", "done")

    # -- the model list ---------------------------------------------------------

    def fetch_models(self) -> None:
        """Fill the model dropdown from the server, in the background, waiting
        at most ``MODELS_WAIT`` seconds; say in one line how that went."""
        self._fetches += 1
        self.models_note = "Asking the server for its models…"
        self.models_task, _ = _spawn(self._fetch_models(self.provider, self.base_url.strip(),
                                                        self._fetches))

    async def _fetch_models(self, name: str, base_url: str, ticket: int) -> None:
        found, note = await models_of(name, base_url, self.demo)
        if ticket == self._fetches:  # not if the provider or address changed meanwhile
            with self.hold_sync():
                self.models, self.models_note = found, note


async def models_of(name: str, base_url: str, demo: bool):
    """(model names, one line on how the list went) for provider ``name``."""
    try:
        found = await asyncio.wait_for(
            targets.list_models(name, base_url=base_url or None, demo=demo, timeout=MODELS_WAIT),
            MODELS_WAIT)
    except asyncio.TimeoutError:
        return [], f"No model list within {MODELS_WAIT:g} s: type a model name."
    except errors.ChatError as err:
        return [], f"No model list ({errors.one_line(str(err))}): type a model name."
    if found is None:
        return [], f"{name} has no model list: type a model name, or leave it for the default."
    where = ("the built-in emulator (demo mode)" if not base_url and
             targets.routes_to_emulator(name, demo) else "the server")
    return found, f"{len(found)} model{'' if len(found) == 1 else 's'} from {where}; any name may be typed."


def _spawn(coro):
    """Run ``coro`` on the running loop of this thread (a kernel's comm handler,
    maybe on a subshell thread), else on ipychat's own loop thread; returns
    (task or future, a thread-safe cancel)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # plain Python: no loop in this thread
        from .loopthread import background_loop

        future = asyncio.run_coroutine_threadsafe(coro, background_loop())
        return future, future.cancel  # Future.cancel is thread-safe
    task = loop.create_task(coro)
    return task, lambda: task.get_loop().call_soon_threadsafe(task.cancel)


def _new_file(directory: Path) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = directory / f"chat-{stamp}.md", 1
    while path.exists():
        n += 1
        path = directory / f"chat-{stamp}-{n}.md"
    return path


def _user_namespace() -> dict:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


__all__ = ["ChatPanel"]
