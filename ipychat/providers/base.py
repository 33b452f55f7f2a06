"""g4f-compatible provider base classes.

``AbstractProvider`` and ``AsyncGeneratorProvider`` keep the 2023 g4f entry
points (``create_async_generator``, ``create_completion``, ``create_async``)
and class flags, so g4f-style classes plug in unchanged; those yield the
answer text only. ``stream_events`` yields the whole answer as typed events
(``ipychat.events``): text, reasoning, usage, finish, tool calls. ``HTTPProvider`` is
what ipychat's own providers build on: it separates control arguments from
body options, and maps every failure into the ``ipychat.errors`` family.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import AsyncIterator, Iterator, Optional
from urllib.parse import urlsplit

from .. import errors
from ..events import Event, Retry
from ..loopthread import iterate_sync
from ..messages import Messages, check_messages, folded, has_images
from . import retry
from .http import Call, EnvURL, client_timeout, translated

#: Arguments that steer a call and never go into a request body.
CONTROL_ARGS = ("stream", "proxy", "base_url", "timeout", "cookies", "api_key", "api_key_env",
                "max_retries")
#: ``--reasoning`` levels; each protocol words them its own way.
REASONING_LEVELS = ("off", "low", "medium", "high")


class AbstractProvider:
    """A chat provider, g4f style. Subclasses set the flags they support."""

    url: Optional[str] = None
    working = False
    needs_auth = False
    supports_stream = False
    supports_gpt_35_turbo = False
    supports_gpt_4 = False
    supports_message_history = False
    model: Optional[str] = None

    @classmethod
    def label(cls) -> str:
        return cls.__name__

    @classmethod
    def create_completion(cls, model: str, messages: Messages, stream: bool = True,
                          **kwargs) -> Iterator[str]:
        raise NotImplementedError(f"{cls.label()} does not implement create_completion")

    @classmethod
    def stream_events(cls, model: str, messages: Messages, **kwargs) -> AsyncIterator[Event]:
        """The answer as events; a g4f-style class's text (and g4f response
        objects) become events the way ``adapt`` reads any foreign class."""
        from .adapt import stream_events  # adapt builds on this module

        return stream_events(cls, model, messages, **kwargs)

    @classmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs) -> str:
        # A synchronous provider blocks: run it in a worker thread.
        def collect():
            return "".join(cls.create_completion(model, messages, stream=False, **kwargs))

        return await asyncio.get_running_loop().run_in_executor(None, collect)


class AsyncGeneratorProvider(AbstractProvider):
    """A provider whose one real method is the async generator of text chunks."""

    supports_stream = True

    @classmethod
    async def create_async_generator(cls, model: str, messages: Messages,
                                     proxy: Optional[str] = None, **kwargs) -> AsyncIterator[str]:
        raise NotImplementedError(f"{cls.label()} does not implement create_async_generator")
        yield  # pragma: no cover  (makes this an async generator)

    @classmethod
    def create_completion(cls, model: str, messages: Messages, stream: bool = True,
                          **kwargs) -> Iterator[str]:
        """Sync generator over the async one; works inside a running loop too."""
        chunks = iterate_sync(cls.create_async_generator(model, messages, **kwargs))
        return chunks if stream else _whole(chunks)

    @classmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs) -> str:
        parts = []
        async with contextlib.aclosing(cls.create_async_generator(model, messages, **kwargs)) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
        return "".join(parts)


def same_origin(url: str, other: str) -> bool:
    """Same scheme, host and port."""
    a, b = urlsplit(url), urlsplit(other)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _whole(chunks: Iterator[str]) -> Iterator[str]:
    yield "".join(chunks)


class HTTPProvider(AsyncGeneratorProvider):
    """Base of ipychat's own providers.

    Subclasses set ``default_base_url`` and implement ``generate(call)``, an
    async generator of text that opens its own session (``http.open_session``).
    """

    #: A default base URL the environment may set, as the vendors' SDKs allow:
    #: ``default_base_url = HTTPProvider.env_url("OPENAI_BASE_URL", url)``. The
    #: provider's own key variable then goes to that URL (``resolve_key``).
    env_url = staticmethod(EnvURL)
    default_base_url: str = ""
    #: Environment variable that holds the API key, for providers that need one.
    api_key_env: Optional[str] = None

    #: Whether the protocol has a field for ``max_tokens=`` / ``reasoning=``.
    takes_max_tokens = True
    takes_reasoning = False
    #: Whether the protocol carries images (``image`` parts in a message's content).
    takes_images = False
    #: Whether the protocol offers tools (``tools=``) and carries tool calls and results.
    takes_tools = False

    @classmethod
    async def stream_events(cls, model: str, messages: Messages,
                            proxy: Optional[str] = None, **kwargs) -> AsyncIterator[Event]:
        """The answer's events. A request that fails before its answer starts is
        sent again (``max_retries=``, ``retry``), each wait announced by a
        ``Retry`` event; once text or reasoning was shown, a failure is final."""
        try:
            call = cls.make_call(model, messages, proxy=proxy, **kwargs)
        except errors.ChatError as err:  # bad input: still say which provider refused it
            err.provider = err.provider or cls.label()
            raise
        attempt = 0
        while True:
            progress = {"started": False}
            call.stream_opened = False
            try:
                async with translated(call, progress):
                    async with contextlib.aclosing(cls.generate(call)) as events:
                        async for event in events:
                            if event.kind in SHOWN:
                                progress["started"] = True
                            yield event
                return
            except errors.ChatError as err:
                failure = err
            attempt += 1
            wait = cls._retry_wait(failure, call, attempt, progress["started"])
            yield Retry(attempt, call.max_retries, wait, retry.reason_of(failure))
            await asyncio.sleep(wait)

    @staticmethod
    def _retry_wait(failure: errors.ChatError, call: Call, attempt: int, started: bool) -> float:
        """How long to wait before sending again, or ``failure`` raised as final."""
        if (started or attempt > call.max_retries
                or not retry.retryable(failure, call.stream_opened)):
            raise retry.after_attempts(failure, attempt)
        try:
            return retry.wait_before(attempt - 1, failure)
        except errors.ChatError as err:  # the server asked to wait too long
            raise retry.after_attempts(err, attempt) from None

    @classmethod
    async def create_async_generator(cls, model: str, messages: Messages,
                                     proxy: Optional[str] = None, **kwargs) -> AsyncIterator[str]:
        """The g4f surface: the answer's text only, never its reasoning."""
        events = cls.stream_events(model, messages, proxy=proxy, **kwargs)
        async with contextlib.aclosing(events):
            async for event in events:
                if event.kind == "text" and event.text:
                    yield event.text

    @classmethod
    def make_call(cls, model, messages, *, proxy=None, base_url=None, timeout=None,
                  cookies=None, api_key=None, api_key_env=None, stream=None,
                  max_tokens=None, reasoning=None, max_retries=None, tools=None, **options) -> Call:
        del stream  # a control argument of create_completion, never sent
        base_url = (base_url or cls.default_base_url).rstrip("/")
        messages = check_messages(messages)
        if has_images(messages) and not cls.takes_images:
            raise errors.UsageError(f"{cls.label()} cannot see images", hint=IMAGE_HINT)
        if not cls.takes_tools:  # earlier tool use, as text this protocol can carry
            messages = folded(messages)
        return Call(
            provider=cls.label(),
            model=model or cls.model,
            messages=messages,
            base_url=base_url,
            proxy=proxy or None,
            timeout=client_timeout(timeout),
            cookies=cookies,
            api_key=cls.resolve_key(api_key, api_key_env, base_url),
            options={k: v for k, v in options.items() if v is not None},
            max_tokens=cls.check_max_tokens(max_tokens),
            reasoning=cls.check_reasoning(reasoning),
            max_retries=retry.check_retries(max_retries),
            tools=cls.check_tools(tools),
        )

    @classmethod
    def check_max_tokens(cls, value) -> Optional[int]:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise errors.UsageError(f"max_tokens must be a whole number above 0, not {value!r}")
        if not cls.takes_max_tokens:
            raise errors.UsageError(f"{cls.label()}'s protocol has no token limit to set",
                                    hint="Leave out --max-tokens for this provider.")
        return value

    @classmethod
    def check_reasoning(cls, value) -> Optional[str]:
        if value is None:
            return None
        if value not in REASONING_LEVELS:
            raise errors.UsageError(f"reasoning must be one of {', '.join(REASONING_LEVELS)}, "
                                    f"not {value!r}")
        if not cls.takes_reasoning:
            raise errors.UsageError(f"{cls.label()} cannot be asked to reason",
                                    hint="--reasoning works with openai, anthropic and ollama.")
        return value

    @classmethod
    def check_tools(cls, tools) -> Optional[list]:
        if not tools:
            return None
        if not cls.takes_tools:
            raise errors.UsageError(f"{cls.label()} cannot call tools", hint=TOOLS_HINT)
        if not isinstance(tools, list) or not all(_is_tool(t) for t in tools):
            raise errors.UsageError("tools must be a list of {'name', 'description', "
                                    "'parameters'} dicts (ipychat.tools.ToolBox.schemas)")
        return tools

    @classmethod
    def resolve_key(cls, api_key: Optional[str], api_key_env: Optional[str],
                    base_url: str) -> Optional[str]:
        """The key to send to ``base_url``.

        A key given, or a variable the user names, goes where the user points.
        The provider's own variable (``OPENAI_API_KEY``...) goes only to the
        provider's own service: pointing ``--base-url`` at some other server
        must not hand it that key unasked. A base URL variable set beside it
        (``OPENAI_BASE_URL``) moves the default, and the key goes with it.
        """
        if api_key:
            return api_key
        if api_key_env:
            if not os.environ.get(api_key_env):
                raise errors.AuthenticationRequired(
                    f"environment variable {api_key_env} is not set",
                    hint=f"Set {api_key_env} or pass api_key=.")
            return os.environ[api_key_env]
        if cls.api_key_env and same_origin(base_url, cls.default_base_url):
            return os.environ.get(cls.api_key_env) or None
        return None

    @classmethod
    def key_hint(cls, base_url: str) -> str:
        """What to do about a missing or rejected key for ``base_url``."""
        env = cls.api_key_env
        if env and os.environ.get(env) and not same_origin(base_url, cls.default_base_url):
            return (f"{env} is sent only to {cls.default_base_url}; to send it to this server, "
                    f"use --api-key-env {env} (api_key_env= in Python).")
        return f"Set {env or 'the key'} or pass api_key=."

    @classmethod
    async def generate(cls, call: Call) -> AsyncIterator[Event]:
        """The answer's events; one text event per network read, not per token
        (each yield crosses every layer above)."""
        raise NotImplementedError
        yield  # pragma: no cover


IMAGE_HINT = ("Images go to openai, anthropic and ollama (with a model that can see); "
              "leave the image out for this provider.")
TOOLS_HINT = "--tools works with openai, anthropic and ollama."


def _is_tool(schema) -> bool:
    return (isinstance(schema, dict) and isinstance(schema.get("name"), str)
            and isinstance(schema.get("parameters"), dict))
#: Event kinds that show the model has started answering (a turn may only call tools).
SHOWN = ("text", "reasoning", "tool_call")
