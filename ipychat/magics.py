"""``%%chat`` and ``%chat``: thin shells over ``session`` and ``targets``.

Settings are traitlets, so ``%config ChatMagics.default_provider = "openai"``
works; environment variables give their defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode, default, observe

from . import commands, errors, replay, runner
from .answer import Answer
from .cells import ErrorRecorder, code_of, context_block
from .options import FORMATS, ChatOptions, chat_arguments, parse
from .recorder import LOG_ENV, default_recorder, env_flag
from .references import Prompt, check, expand, image_file
from .render import REASONING_MODES, StreamView, TerminalView
from .session import Interrupted, default_conversation
from .toolloop import MAX_TOOL_ROUNDS, answer_blocking, answer_into


@magics_class
class ChatMagics(Magics):
    """Chat with a language model; the cell body is the prompt.

    Cell magic::

        %%chat [options]
        Explain {topic} in two sentences.

    ``{name}`` is replaced by that variable's value; ``{{`` and ``}}`` escape.

    Line magic: ``%chat providers | use NAME [options] | history | last |
    fix [N] [options] | reset | demo [on|off] | panel | stop | log ... | resume |
    replay [on|off|only]``.
    """

    default_provider = Unicode(help="Provider used when a cell names none.").tag(config=True)
    default_model = Unicode(help="Model used when a cell names none.").tag(config=True)
    demo = Bool(help="Answer the classic providers (and the zero-config case) from the "
                     "built-in emulator.").tag(config=True)
    max_history = Int(50, help="Past turns sent with each question (0: none).").tag(config=True)
    update_interval = Float(0.1, help="Seconds between live output updates.").tag(config=True)
    timeout = Float(60.0, help="Seconds to wait to connect and for each next piece.").tag(
        config=True)
    format = CaselessStrEnum(FORMATS, default_value="markdown",
                             help="How answers are shown.").tag(config=True)
    reasoning = CaselessStrEnum(
        REASONING_MODES, default_value="collapsed",
        help="How a model's thinking is shown: collapsed (open while it thinks, folded once "
             "the answer starts), shown, or hidden.").tag(config=True)
    stats = Bool(True, help="A stats line (model, times, tokens) under each answer.").tag(
        config=True)
    max_retries = Int(2, help="How often a request that failed before its answer started is "
                              "sent again (0: never).").tag(config=True)
    max_value_chars = Int(20_000, help="Most characters one {value} in a prompt becomes "
                                       "(a visible note says what was cut).").tag(config=True)
    max_tool_rounds = Int(MAX_TOOL_ROUNDS, help="How many times one answer may run tools and "
                                                "go back to the model.").tag(config=True)
    code_prompt = Unicode(
        "Answer with one Python code block that can run in this notebook, and at most a "
        "sentence or two around it.",
        help="Added to the system prompt for --format code (empty: nothing added).").tag(
        config=True)
    log = Bool(help="Write every answer to the log (IPYCHAT_HOME/log.db); IPYCHAT_LOG=0 "
                    "turns it off.").tag(config=True)

    @default("default_provider")
    def _provider_from_env(self):
        return os.environ.get("IPYCHAT_PROVIDER", "")

    @default("default_model")
    def _model_from_env(self):
        return os.environ.get("IPYCHAT_MODEL", "")

    @default("demo")
    def _demo_from_env(self):
        return os.environ.get("IPYCHAT_DEMO", "1").strip().lower() not in ("0", "off", "false", "no")

    @default("log")
    def _log_from_env(self):
        return env_flag(LOG_ENV)

    @observe("log")
    def _log_changed(self, change):
        self.recorder.enabled = change["new"]

    def __init__(self, shell=None, **kwargs):
        self.recorder = default_recorder()  # before traits: the observer writes to it
        super().__init__(shell, **kwargs)
        self.recorder.enabled = self.log  # the panel reads it there
        self.conversation = default_conversation()
        self.defaults = ChatOptions()
        #: ``Err[n]``, kept from the moment the extension is loaded.
        self.cell_errors = ErrorRecorder(shell, lambda: self.max_value_chars)

    @line_cell_magic
    @chat_arguments
    def chat(self, line, cell=None):
        """Chat with a language model: the cell body is the prompt, streamed live.

        ``{name}`` in the body is replaced by that variable's value (``{{``/``}}``
        escape). Interrupt the kernel to stop an answer; the text so far stays.
        Line magic: ``%chat providers | use NAME [options] | history | last |
        fix [N] [options] | reset | demo [on|off] | panel | stop | log [N] |
        log --search TEXT | log export PATH | log clear | resume | replay [on|off|only]``.
        """
        if cell is None:
            return commands.run(self, line)
        return self.ask(line, cell)

    def ask(self, line: str, question: str):
        """Answer ``question`` with the options in ``line``, as a ``%%chat`` cell does."""
        job = self._prepare(parse(self.chat, line).merged_over(self.defaults), question)
        if runner.can_await(self.shell):
            return self._awaitable(job)
        return self._run_blocking(job)

    # -- one turn -------------------------------------------------------------

    def _prepare(self, opts: ChatOptions, cell: str) -> "Job":
        from .targets import resolve

        prompt = self._prompt(opts, cell)
        if opts.system is not None and not opts.no_history:
            self.conversation.system = opts.system
        self.conversation.max_history = self.max_history
        target = resolve(
            opts.provider or self.default_provider or None,
            model=opts.model or self.default_model or None,
            options={**opts.body_options(), "api_key_env": opts.api_key_env,
                     "max_retries": self.max_retries if opts.retries is None else opts.retries},
            base_url=opts.base_url, proxy=opts.proxy,
            timeout=opts.timeout or self.timeout, demo=self.demo,
        )
        tools = self._tools(opts, target)
        messages = self.conversation.messages_for(
            prompt.content(), use_history=not opts.no_history, system=self._system(opts))
        answer = target.answer(prompt.text, messages,
                               conversation=None if opts.no_history else self.conversation.id,
                               tools=tools.schemas if tools else None)
        source = self.recorder.source(target, answer)  # the log's answer, or the model
        header = "\n\n".join(filter(None, [target.note, answer.replayed and replay.note(answer)]))
        view = self._view(opts, header)
        if not opts.no_history:  # a one-off question is not part of the conversation
            view = self.conversation.live(answer, view, _loop_scheduler())
        return Job(opts, target, source, messages, view, answer, tools)

    def _tools(self, opts: ChatOptions, target):
        """The cell's ``--tools``, looked up now (a function redefined since is
        the new one), and checked against the provider before anything is sent."""
        if not opts.tools:
            return None
        from .tools import ToolBox

        tools = ToolBox.from_names(opts.tools, self.shell.user_ns)
        target.check_tools()
        return tools

    def _prompt(self, opts: ChatOptions, cell: str) -> Prompt:
        """The cell's question with its references, images and context, checked."""
        from .targets import secret_variables

        prompt = expand(cell, self.shell.user_ns, self.max_value_chars).strip()
        for path in opts.images or ():
            prompt.add("\n\n")
            prompt.add(image_file(path))
        if not prompt.parts:
            raise errors.UsageError("the cell is empty", hint="Write your question below %%chat.")
        if opts.context:
            prompt = Prompt([context_block(self.shell, opts.context, self.max_value_chars)]
                            + prompt.parts)
        check(prompt, secret_variables(opts.api_key_env))
        return prompt

    def _system(self, opts: ChatOptions):
        """The system prompt for this cell: ``--format code`` adds its instruction."""
        if self._format(opts) != "code" or not self.code_prompt:
            return opts.system
        base = opts.system if opts.system is not None else self.conversation.system
        return "\n\n".join(part for part in (base, self.code_prompt) if part)

    def _format(self, opts: ChatOptions) -> str:
        return opts.format or self.format

    def _view(self, opts: ChatOptions, header: str):
        shown = {"reasoning": self.reasoning, "stats": self.stats and not opts.no_stats,
                 "previews": not opts.quiet_tools}
        if not runner.in_kernel(self.shell):
            return TerminalView(header=header, **shown)
        schedule = _loop_scheduler()
        fmt = "markdown" if self._format(opts) == "code" else self._format(opts)
        return StreamView(fmt=fmt, interval=self.update_interval,
                          header=header, schedule=schedule, **shown)

    def _awaitable(self, job: "Job"):
        if job.opts.background and self._format(job.opts) == "code":
            raise errors.UsageError("--format code needs the cell to wait for its answer",
                                    hint="Leave out --background.")
        job.view.start()
        if job.opts.background:
            async def start():
                runner.start_background(self._stream(job, quiet=True))
            return start()
        return self._stream(job)

    async def _stream(self, job: "Job", quiet: bool = False):
        describe = _describe_error if quiet else None
        wake = contextlib.nullcontext() if quiet else runner.wake_for_signals()
        try:
            with wake:
                await answer_into(job.source, job.messages, job.view, job.answer, job.tools,
                                  describe=describe, **self._loop_settings(job))
        except asyncio.CancelledError:
            if quiet:
                raise
            raise Interrupted("interrupted") from None
        except Exception:
            if not quiet:  # a background answer's error is in its mark
                raise
        finally:
            self._record(job)  # an unfinished answer too: last_result(), --out

    def _run_blocking(self, job: "Job"):
        if job.opts.background:
            raise errors.UsageError("--background needs a Jupyter kernel with autoawait on")
        job.view.start()
        try:
            answer_blocking(job.source, job.messages, job.view, job.answer, job.tools,
                            **self._loop_settings(job))
        finally:
            self._record(job)

    def _loop_settings(self, job: "Job") -> dict:
        return {"max_rounds": job.opts.max_tool_rounds or self.max_tool_rounds,
                "limit": self.max_value_chars}

    def _record(self, job: "Job") -> None:
        self.conversation.record(job.answer, remember=not job.opts.no_history)
        if job.opts.out:
            self.shell.user_ns[job.opts.out] = job.answer.text
        if self._format(job.opts) == "code" and job.answer.complete:
            # A new cell below (the next prompt in a terminal), never run by us.
            self.shell.set_next_input(code_of(job.answer.text), replace=False)
        warning = self.recorder.keep(job.answer, job.target.secrets())
        if warning:
            job.view.warn(warning)


class Job:
    """Everything one ``%%chat`` cell needs, resolved before anything is sent:
    the answer comes from ``source``, the target or, replayed, the log."""

    def __init__(self, opts, target, source, messages, view, answer: Answer, tools=None):
        self.opts, self.target, self.source, self.messages = opts, target, source, messages
        self.view, self.answer = view, answer
        self.tools = None if answer.replayed else tools  # a replay runs no tools


def _describe_error(err: BaseException) -> str:
    return f"cut short: {err}" if isinstance(err, errors.ChatError) else "cut short"


def _loop_scheduler():
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later


def load(shell) -> None:
    """Register the magics, the await hook and ``Err``; loading twice is harmless."""
    if "ChatMagics" not in shell.magics_manager.registry:
        shell.register_magics(ChatMagics)
    runner.install(shell)
    shell.magics_manager.registry["ChatMagics"].cell_errors.install()


def unload(shell) -> None:
    magics = shell.magics_manager.registry.get("ChatMagics")
    if magics is not None:
        magics.cell_errors.uninstall()
    runner.uninstall(shell)
    import sys  # kept-alive connections go too; no pool if no call loaded aiohttp
    if "ipychat.providers.pool" in sys.modules:
        sys.modules["ipychat.providers.pool"].close_all()
    for kind in ("line", "cell"):
        shell.magics_manager.magics[kind].pop("chat", None)
    shell.magics_manager.registry.pop("ChatMagics", None)
