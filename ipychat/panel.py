"""``ChatPanel``: the same chat as ``%%chat``, driven by widgets.

A thin shell over ``session`` (Conversation, ``stream_into``), ``targets``
(which provider, demo routing) and ``render`` (coalesced updates): the panel
adds only what buttons need, namely starting an answer without blocking the
comm handler and stopping it from any thread.

Send while an answer streams: Send is disabled then and only Stop is
enabled, so answers never interleave and each question is asked with the
previous answer already in the history.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from . import errors
from .answer import Answer
from .references import prepare
from .panel_view import PanelView
from .providers import list_providers
from .recorder import Recorder, default_recorder
from .render import StreamView
from .session import Conversation, default_conversation, stream_into
from .targets import default_name, resolve, secret_variables

#: Seconds between answer updates, as for %%chat: about ten widget value sets a second.
UPDATE_INTERVAL = 0.1
READY = "Ready: type a question and press Send."
EMPTY = "The prompt is empty: type a question first."
STOPPED = "Stopped: the text so far is kept, but not added to the conversation."
STILL_BUSY = "An answer is still streaming: press Stop first."
DEMO_NOTE = " (built-in emulator, demo mode)"


class ChatPanel(PanelView):
    """A chat panel: pick a provider, ask, watch the answer stream, stop it.

    ``conversation``: the chat to continue; by default the notebook's one,
    shared with ``%%chat``. ``ChatPanel(conversation=Conversation())`` keeps
    its own. ``demo``: classic providers answer from the built-in emulator.
    ``recorder``: logs its answers and replays them (default: the one
    ``%%chat`` uses, so ``%config ChatMagics.log`` and ``%chat replay`` apply).
    """

    def __init__(self, conversation: Optional[Conversation] = None,
                 provider: Optional[str] = None, demo: bool = True,
                 namespace: Optional[dict] = None, recorder: Optional[Recorder] = None):
        self.conversation = default_conversation() if conversation is None else conversation
        self.recorder = default_recorder() if recorder is None else recorder
        #: Where ``{name}`` in a prompt is looked up (default: the notebook's variables).
        self.namespace = _user_namespace() if namespace is None else namespace
        super().__init__(list_providers(), demo)
        #: The running answer: an asyncio.Task, or a concurrent Future on ipychat's loop thread.
        self.task = None
        self._streaming = False
        self._cancel = None
        self.provider.value = self._initial_provider(provider)
        self.refill(self.provider.value)  # no change event when it was already selected
        self.system.value = self.conversation.system or ""
        self.system.observe(self._system_changed, "value")
        self.send_button.on_click(self.send)
        self.stop_button.on_click(self.stop)
        self.show_history(self.conversation)
        self.show_status(READY)

    def _initial_provider(self, provider: Optional[str]) -> str:
        names = [name for _, name in self.provider.options]
        if provider is not None:
            if provider.strip().lower() not in names:
                raise errors.ProviderNotFound(provider, names)
            return provider.strip().lower()
        try:
            chosen = default_name(self.demo)
        except errors.UsageError:  # no key and no demo: let the user pick
            return names[0]
        return chosen if chosen in names else names[0]

    def _system_changed(self, change) -> None:
        self.conversation.system = change["new"].strip() or None

    @property
    def busy(self) -> bool:
        return self._streaming

    # -- buttons --------------------------------------------------------------

    def send(self, _button=None) -> None:
        """Start answering the prompt; returns at once."""
        if self._streaming:
            return self.show_status(STILL_BUSY, "error")
        typed = self.prompt.value.strip()
        if not typed:
            return self.show_status(EMPTY, "error")
        try:
            # The same {references} as %%chat: the panel runs in the same kernel.
            prompt = prepare(typed, self.namespace, secret_variables())
            target = self._target()
        except errors.ChatError as err:
            return self.show_status(str(err), "error")
        self.show_history(self.conversation)  # %%chat cells may have added turns
        messages = self.conversation.messages_for(prompt.content())
        answer = target.answer(prompt.text, messages, conversation=self.conversation.id)
        try:
            events = self.recorder.source(target, answer, messages)  # the log's, or the model's
        except errors.ChatError as err:  # replay only, and nothing recorded
            return self.show_status(str(err), "error")
        self._launch(self._answer(answer, target, events, typed))

    def stop(self, _button=None) -> None:
        """Cancel the answer that streams, from whichever thread the click arrives on."""
        if self._streaming and self._cancel is not None:
            self.show_status("Stopping…", "busy")
            self._cancel()

    def _target(self):
        return resolve(self.provider.value, model=self.model.value.strip() or None,
                       options={"temperature": self.temperature.value},
                       base_url=self.base_url.value.strip() or None, demo=self.demo)

    def _launch(self, coro) -> None:
        self._streaming = True
        self.set_busy(True)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # plain Python: no loop in this thread, use ipychat's own
            from .loopthread import background_loop

            future = asyncio.run_coroutine_threadsafe(coro, background_loop())
            self.task, self._cancel = future, future.cancel  # Future.cancel is thread-safe
        else:
            task = loop.create_task(coro)
            self.task = task
            self._cancel = lambda: task.get_loop().call_soon_threadsafe(task.cancel)
        self.task.add_done_callback(self._settle)

    def _settle(self, task) -> None:
        """A task cancelled before its first step never ran ``_answer``: tidy up here."""
        if task is self.task and self._streaming:
            self._end(None, STOPPED, "info")

    # -- one answer -----------------------------------------------------------

    async def _answer(self, answer: Answer, target, events, typed: str) -> None:
        # The stats line goes into the status line, not under the answer.
        view = StreamView("markdown", interval=UPDATE_INTERVAL, publish=self._publisher(),
                          schedule=asyncio.get_running_loop().call_later, stats=False)
        via = DEMO_NOTE if target.note else ""
        if answer.replayed:
            via += f" (replayed from the log ({answer.replayed}))"
        secrets = target.secrets()
        view.start()
        self.show_status(f"{target.label} is answering{via}…", "busy")
        try:
            await stream_into(events, view, answer, _mark)
        except asyncio.CancelledError:
            self._end(answer, STOPPED, "info", secrets)
            raise
        except errors.ChatError as err:
            self._end(answer, str(err), "error", secrets)
        except Exception as err:  # a bug below us must not leave the panel stuck
            self._end(answer, f"Unexpected error: {type(err).__name__}: {errors.one_line(err)}",
                      "error", secrets)
        else:
            self._end(answer, f"Done: {target.label} answered{via}. {answer.stats()}", "done",
                      secrets)
            if self.prompt.value.strip() == typed:  # not if the next question is being typed
                self.prompt.value = ""

    def _publisher(self):
        """``publish(data, handle)`` for one answer: its first output replaces
        the last answer; the next parts of a huge answer go below it."""
        count = 0

        def publish(data: dict, handle):
            nonlocal count
            if handle is None:
                handle, count = count, count + 1
            self.show_answer(data, handle)
            return handle

        return publish

    def _end(self, answer: Optional[Answer], status: str, kind: str, secrets=()) -> None:
        if answer is not None:
            self.conversation.record(answer)  # an incomplete answer stays out of the history
            self.show_history(self.conversation)
            warning = self.recorder.keep(answer, secrets)
            status += f" ({warning})" if warning else ""
        self._streaming = False
        self.set_busy(False)
        self.show_status(status, kind)


def _mark(err: BaseException) -> str:
    return "cut short: see the status above"


__all__ = ["ChatPanel"]


def _user_namespace() -> dict:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}
