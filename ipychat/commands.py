"""The ``%chat`` line magic's subcommands."""

from __future__ import annotations

from . import errors
from .calls import call_line
from .options import ChatOptions, parse

SUBCOMMANDS = ("providers", "use", "history", "last", "fix", "reset", "demo", "panel", "stop",
               "log", "resume", "replay")


def run(magics, line: str):
    word, _, rest = line.strip().partition(" ")
    if not word:
        return _show(f"%chat subcommands: {', '.join(SUBCOMMANDS)}. "
                     "Use %%chat [options] with your question in the cell body; %%chat? for help.")
    handler = globals().get(f"_{word}") if word in SUBCOMMANDS else None
    if handler is None:
        raise errors.UsageError(f"unknown %chat subcommand {word!r}",
                                hint=f"Use one of: {', '.join(SUBCOMMANDS)}.")
    return handler(magics, rest.strip())


def _show(text: str, markdown: str | None = None):
    from IPython.display import display

    bundle = {"text/plain": text}
    if markdown:
        bundle["text/markdown"] = markdown
    display(bundle, raw=True)


def _providers(magics, rest: str):
    from .providers import list_providers
    from .targets import routes_to_emulator

    rows = []
    for info in list_providers():
        emulated = routes_to_emulator(info.name, magics.demo)
        where = "built-in emulator (demo)" if emulated else info.base_url
        rows.append((info.name, info.model or "", where or "", _yes(info.working),
                     _yes(info.needs_auth)))
    head = ("name", "default model", "base URL", "working", "needs auth")
    _show(_text_table(head, rows), _markdown_table(head, rows))


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _text_table(head, rows) -> str:
    widths = [max(len(str(r[i])) for r in (head, *rows)) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
             for row in (head, *rows)]
    return "\n".join(lines)


def _markdown_table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(f"`{c}`" if i == 0 else str(c) for i, c in enumerate(row)) + " |"
              for row in rows]
    return "\n".join(lines)


def _use(magics, rest: str):
    from .providers import get_provider

    if not rest:
        return _show(f"Defaults: {_describe(magics.defaults, magics)}")
    name, _, options = rest.partition(" ")
    if name.startswith("-"):
        name, options = "", rest
    opts = parse(magics.chat, options)
    if opts.out or opts.background:
        raise errors.UsageError("--out and --background apply to one cell, not to %chat use")
    if name:
        for part in name.split(","):
            get_provider(part)  # fail now, not at the next cell
        opts.provider = name
    if opts.tools:
        from .tools import ToolBox

        ToolBox.from_names(opts.tools, magics.shell.user_ns)  # fail now too
    magics.defaults = opts.merged_over(magics.defaults)
    magics.defaults.no_tools = False  # it dropped the tools; later cells may name some
    return _show(f"Defaults: {_describe(magics.defaults, magics)}")


def _describe(opts: ChatOptions, magics) -> str:
    provider = opts.provider or magics.default_provider or "(zero-config)"
    parts = [f"provider={provider}"]
    for name in ("model", "temperature", "max_tokens", "reasoning", "params", "base_url",
                 "format", "tools", "max_tool_rounds"):
        value = getattr(opts, name)
        if value is not None:
            parts.append(f"{name}={value}")
    if opts.proxy:
        parts.append(f"proxy={errors.hide_credentials(opts.proxy)}")
    if opts.quiet_tools:
        parts.append("quiet_tools")
    if opts.system:
        parts.append(f"system={opts.system!r}")
    return ", ".join(parts)


def _history(magics, rest: str):
    conversation = magics.conversation
    if not conversation.turns:
        return _show("No history yet.")
    lines = [f"system: {conversation.system}"] if conversation.system else []
    for turn in conversation.turns:
        lines.append(f"user: {turn.prompt}")
        lines += [f"tool: {call_line(run)}" for run in turn.tool_calls]
        lines.append(f"assistant ({turn.provider}): {turn.text}")
    return _show("\n".join(lines))


def _last(magics, rest: str):
    from .answer import last_result

    answer = last_result()
    if answer is None:
        return _show("No answer yet.")
    rows = [("status", answer.status + (f": {answer.error}" if answer.error else "")),
            ("stats", answer.stats()), ("finish reason", answer.finish_reason or "not reported"),
            ("input tokens", _reported(answer.usage.get("input_tokens"))),
            ("output tokens", _reported(answer.usage.get("output_tokens"))),
            ("reasoning", f"{len(answer.reasoning.split()):,} words" if answer.reasoning
             else "none"),
            ("text", f"{len(answer.text):,} characters")]
    if answer.replayed:
        rows.insert(1, ("replayed", f"from the log ({answer.replayed}): no request was sent"))
    rows += [("tool call", call_line(run)) for run in answer.tool_calls]
    text = "\n".join(f"{key}: {value}" for key, value in rows)
    return _show(text + "\nIn Python: ipychat.last_result()")


def _fix(magics, rest: str):
    """Ask why the last failed cell (or cell N) failed, with its code and error."""
    from .cells import fix_prompt, last_failed

    number, _, options = rest.partition(" ")
    if not number.isdigit():
        number, options = "", rest
    failed = magics.cell_errors.errors
    n = int(number) if number else last_failed(failed, magics.shell.execution_count)
    if n is None:
        raise errors.UsageError("no failed cell to fix", hint="Run the cell that fails first.")
    if n not in failed:
        raise errors.UsageError(f"cell {n} raised no error",
                                hint="%chat fix N takes the number of a cell that failed.")
    inputs = magics.shell.user_ns.get("In", [])
    code = inputs[n] if n < len(inputs) else ""
    # Braces in code and tracebacks are text here, not {references}.
    question = fix_prompt(code, failed[n]).replace("{", "{{").replace("}", "}}")
    return magics.ask(options.strip(), question)


def _reported(value) -> str:
    return "not reported" if value is None else f"{value:,}"


def _reset(magics, rest: str):
    magics.conversation.reset()
    magics.conversation.system = None
    return _show("History cleared.")


def _demo(magics, rest: str):
    if rest not in ("", "on", "off"):
        raise errors.UsageError(f"%chat demo takes on or off, not {rest!r}")
    if rest:
        magics.demo = rest == "on"
    state = "on: the classic providers answer from the built-in emulator" if magics.demo else \
        "off: providers go to their real services"
    return _show(f"Demo mode {state}.")


def _panel(magics, rest: str):
    from .panel import ChatPanel

    return ChatPanel(conversation=magics.conversation)


def _stop(magics, rest: str):
    from .runner import background_tasks

    tasks = [task for task in background_tasks() if not task.done()]
    for task in tasks:
        task.cancel()
    return _show(f"Stopped {len(tasks)} background answer(s).")


# -- the log ------------------------------------------------------------------------

def _log(magics, rest: str):
    from . import logcommands

    return logcommands.log(magics, rest)


def _resume(magics, rest: str):
    from . import logcommands

    return logcommands.resume(magics, rest)


def _replay(magics, rest: str):
    from . import logcommands

    return logcommands.replay_mode(magics, rest)
