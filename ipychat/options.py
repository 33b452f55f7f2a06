"""Options of ``%%chat`` and ``%chat use``: parsing, checking, interpolation.

Parsing is ``shlex.split`` (quotes work as in a shell) then the argparse
parser of IPython's ``magic_arguments``, so ``%%chat?`` shows the help and a
bad option is a ``UsageError``: one line, no traceback.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, fields
from typing import Optional

from IPython.core.error import UsageError as IPythonUsageError
from IPython.core.magic_arguments import argument, magic_arguments

from . import errors

FORMATS = ("markdown", "text", "code")
REASONING = ("off", "low", "medium", "high")
#: Body fields ipychat sets itself: ``--param`` may not change them.
OWN_FIELDS = ("model", "messages", "stream")


@dataclass
class ChatOptions:
    """One cell's options; ``None`` means "use the session default"."""

    provider: Optional[str] = None
    model: Optional[str] = None
    temperature: Optional[float] = None
    system: Optional[str] = None
    base_url: Optional[str] = None
    proxy: Optional[str] = None
    out: Optional[str] = None
    no_history: bool = False
    format: Optional[str] = None
    background: bool = False
    timeout: Optional[float] = None
    api_key_env: Optional[str] = None
    max_tokens: Optional[int] = None
    reasoning: Optional[str] = None
    #: ``--param KEY=VALUE`` body options.
    params: Optional[dict] = None
    no_stats: bool = False
    #: ``--image PATH`` files to attach; ``--context N`` cells to send along.
    images: Optional[list] = None
    context: Optional[int] = None
    #: ``--retries N``: how often a request that failed before its answer is sent again.
    retries: Optional[int] = None
    #: ``--tools f,g``: names of functions the model may call; ``--no-tools``: none.
    tools: Optional[str] = None
    no_tools: bool = False
    max_tool_rounds: Optional[int] = None
    quiet_tools: bool = False

    def merged_over(self, defaults: "ChatOptions") -> "ChatOptions":
        """These options, with unset ones taken from ``defaults`` (``--param``
        keys are merged, this cell's winning; ``--no-tools`` drops the default tools)."""
        values = {}
        for f in fields(self):
            mine = getattr(self, f.name)
            # "is", not "in (None, False)": 0 == False, and -t 0 or --retries 0 are set values.
            unset = mine is None or mine is False
            values[f.name] = getattr(defaults, f.name) if unset else mine
        if self.params and defaults.params:
            values["params"] = {**defaults.params, **self.params}
        if self.no_tools:
            values["tools"] = None
        return ChatOptions(**values)

    def body_options(self) -> dict:
        """What reaches the provider besides the prompt: sampling and limits."""
        found = dict(self.params or {})
        if self.temperature is not None:
            found["temperature"] = self.temperature
        if self.max_tokens is not None:
            found["max_tokens"] = self.max_tokens
        if self.reasoning is not None:
            found["reasoning"] = self.reasoning
        return found

    def __repr__(self) -> str:  # a proxy URL may carry a password
        proxy = errors.hide_credentials(self.proxy) if self.proxy else None
        return f"ChatOptions(provider={self.provider!r}, model={self.model!r}, proxy={proxy!r})"


def chat_arguments(func):
    """Decorate a magic with the shared ``%%chat`` options."""
    decorators = [
        magic_arguments(),
        argument("-p", "--provider", help="Provider name, a fallback chain a,b,c, or "
                 "package.module:Class."),
        argument("-m", "--model", help="Model name (default: the provider's)."),
        argument("-t", "--temperature", help="Sampling temperature, 0 to 2."),
        argument("-s", "--system", help="System prompt for this conversation."),
        argument("--base-url", dest="base_url", help="Server URL (default: the provider's)."),
        argument("--proxy", help="HTTP proxy URL."),
        argument("--timeout", help="Seconds to wait for the server (connect, each read)."),
        argument("--api-key-env", dest="api_key_env", metavar="VAR",
                 help="Environment variable holding the API key to send to this server."),
        argument("-o", "--out", help="Store the answer text in this variable."),
        argument("--no-history", dest="no_history", action="store_true",
                 help="A one-off question: no history sent, none recorded."),
        argument("--format", help="How to show the answer: markdown (default), text, or code "
                                  "(shown as Markdown, then its code goes into a new cell below)."),
        argument("--background", action="store_true",
                 help="Return at once; the answer keeps streaming into this output."),
        argument("--max-tokens", dest="max_tokens", metavar="N",
                 help="Most tokens the answer may have (the provider's default otherwise)."),
        argument("--reasoning", metavar="LEVEL",
                 help="Ask the model to think: off, low, medium or high (openai, anthropic, "
                      "ollama)."),
        argument("--param", action="append", metavar="KEY=VALUE",
                 help="Any other body option, e.g. top_p=0.9 or stop='[\"\\n\"]'; VALUE is "
                      "JSON when it parses as JSON, else text. Repeatable."),
        argument("--no-stats", dest="no_stats", action="store_true",
                 help="No stats line (model, times, tokens) under the answer."),
        argument("--image", action="append", metavar="PATH",
                 help="Attach a PNG or JPEG file for a model that can see. Repeatable."),
        argument("--context", metavar="N",
                 help="Send the code and output of the last N cells along, before the question."),
        argument("--retries", metavar="N",
                 help="How often to send a request again that failed before its answer "
                      "started (default 2; 0: never)."),
        argument("--tools", metavar="F,G",
                 help="Functions of this notebook the model may call (names, comma-separated; "
                      "obj.method works): openai, anthropic, ollama."),
        argument("--no-tools", dest="no_tools", action="store_true",
                 help="No tools for this cell (or, with %%chat use, from now on)."),
        argument("--max-tool-rounds", dest="max_tool_rounds", metavar="N",
                 help="How many times one answer may run tools and go back to the model "
                      "(default 8)."),
        argument("--quiet-tools", dest="quiet_tools", action="store_true",
                 help="Show each tool call's line without a preview of its result."),
    ]
    for decorate in reversed(decorators):
        func = decorate(func)
    return func


def parse(magic_func, line: str) -> ChatOptions:
    """Parse ``line`` for ``magic_func`` (decorated with ``chat_arguments``)."""
    try:
        argv = shlex.split(line)
    except ValueError as err:  # e.g. an unclosed quote
        raise errors.UsageError(f"cannot read the options: {err}") from None
    try:
        args = magic_func.parser.parse_args(argv)
    except IPythonUsageError as err:  # argparse's message, as our one-line error
        raise errors.UsageError(str(err), hint="See %%chat? for the options.") from None
    return ChatOptions(
        provider=args.provider,
        model=args.model,
        temperature=_temperature(args.temperature),
        system=args.system,
        base_url=_url(args.base_url, "--base-url"),
        proxy=_url(args.proxy, "--proxy"),
        out=_identifier(args.out),
        no_history=args.no_history,
        format=_format(args.format),
        background=args.background,
        timeout=_seconds(args.timeout),
        api_key_env=_env_name(args.api_key_env),
        max_tokens=_max_tokens(args.max_tokens),
        reasoning=_choice(args.reasoning, REASONING, "--reasoning"),
        params=_params(args.param),
        no_stats=args.no_stats,
        images=args.image or None,
        context=_count(args.context, "--context"),
        retries=_count(args.retries, "--retries", lowest=0),
        tools=_tools(args.tools),
        no_tools=args.no_tools,
        max_tool_rounds=_count(args.max_tool_rounds, "--max-tool-rounds"),
        quiet_tools=args.quiet_tools,
    )


def _temperature(value: Optional[str]) -> Optional[float]:
    return _number(value, lambda t: 0 <= t <= 2,
                   f"temperature must be a number from 0 to 2, not {value!r}")


def _seconds(value: Optional[str]) -> Optional[float]:
    return _number(value, lambda t: t > 0,
                   f"--timeout must be a number of seconds above 0, not {value!r}")


def _number(value: Optional[str], in_range, message: str) -> Optional[float]:
    """``value`` as a finite float within range, or a ``UsageError`` saying ``message``."""
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and in_range(number)):
        raise errors.UsageError(message)
    return number


def _url(value: Optional[str], option: str) -> Optional[str]:
    if value is None:
        return None
    if not re.match(r"^https?://[^/\s]+", value):
        shown = errors.hide_credentials(value)
        raise errors.UsageError(f"{option} must be an http:// or https:// URL, not {shown!r}")
    return value


def _identifier(value: Optional[str]) -> Optional[str]:
    if value is not None and not value.isidentifier():
        raise errors.UsageError(f"--out needs a variable name, not {value!r}")
    return value


def _env_name(value: Optional[str]) -> Optional[str]:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        # Never echo the value: it may be the key itself, pasted by mistake.
        raise errors.UsageError("--api-key-env needs an environment variable name",
                                hint="Name the variable, never the key itself.")
    return value


def _format(value: Optional[str]) -> Optional[str]:
    return _choice(value, FORMATS, "--format")


def _choice(value: Optional[str], choices, option: str) -> Optional[str]:
    if value is not None and value not in choices:
        raise errors.UsageError(f"{option} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _max_tokens(value: Optional[str]) -> Optional[int]:
    return _count(value, "--max-tokens")


def _count(value: Optional[str], option: str, lowest: int = 1) -> Optional[int]:
    if value is None:
        return None
    if not re.fullmatch(r"\s*\+?\d+\s*", value) or int(value) < lowest:
        least = "above 0" if lowest == 1 else f"from {lowest} up"
        raise errors.UsageError(f"{option} must be a whole number {least}, not {value!r}")
    return int(value)


def _tools(value: Optional[str]) -> Optional[str]:
    """``--tools`` names, checked for form here and looked up when a cell runs."""
    if value is None:
        return None
    from .tools import split_names

    return ",".join(split_names(value))


def _params(values) -> Optional[dict]:
    """``--param KEY=VALUE`` options as a dict; VALUE is JSON if it parses so."""
    if not values:
        return None
    found = {}
    for item in values:
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise errors.UsageError(f"--param needs KEY=VALUE, not {item!r}")
        if key in OWN_FIELDS:
            raise errors.UsageError(f"--param cannot set {key!r}: ipychat sets it itself",
                                    hint="Use --model for the model; the cell is the message.")
        try:
            found[key] = json.loads(raw)
        except ValueError:
            found[key] = raw
    return found
