"""g4f-compatible provider base classes.

``AbstractProvider`` and ``AsyncGeneratorProvider`` keep the 2023 g4f entry
points (``create_async_generator``, ``create_completion``, ``create_async``)
and class flags, so g4f-style classes plug in unchanged. ``HTTPProvider`` is
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
from ..loopthread import iterate_sync
from ..messages import Messages, check_messages
from .http import Call, client_timeout, translated

#: Arguments that steer a call and never go into a request body.
CONTROL_ARGS = ("stream", "proxy", "base_url", "timeout", "cookies", "api_key", "api_key_env")


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

    default_base_url: str = ""
    #: Environment variable that holds the API key, for providers that need one.
    api_key_env: Optional[str] = None

    @classmethod
    async def create_async_generator(cls, model: str, messages: Messages,
                                     proxy: Optional[str] = None, **kwargs) -> AsyncIterator[str]:
        try:
            call = cls.make_call(model, messages, proxy=proxy, **kwargs)
        except errors.ChatError as err:  # bad input: still say which provider refused it
            err.provider = err.provider or cls.label()
            raise
        progress = {"started": False}
        async with translated(call, progress):
            async with contextlib.aclosing(cls.generate(call)) as chunks:
                async for text in chunks:
                    if text:
                        progress["started"] = True
                        yield text

    @classmethod
    def make_call(cls, model, messages, *, proxy=None, base_url=None, timeout=None,
                  cookies=None, api_key=None, api_key_env=None, stream=None,
                  **options) -> Call:
        del stream  # a control argument of create_completion, never sent
        base_url = (base_url or cls.default_base_url).rstrip("/")
        return Call(
            provider=cls.label(),
            model=model or cls.model,
            messages=check_messages(messages),
            base_url=base_url,
            proxy=proxy or None,
            timeout=client_timeout(timeout),
            cookies=cookies,
            api_key=cls.resolve_key(api_key, api_key_env, base_url),
            options={k: v for k, v in options.items() if v is not None},
        )

    @classmethod
    def resolve_key(cls, api_key: Optional[str], api_key_env: Optional[str],
                    base_url: str) -> Optional[str]:
        """The key to send to ``base_url``.

        A key given, or a variable the user names, goes where the user points.
        The provider's own variable (``OPENAI_API_KEY``...) goes only to the
        provider's own service: pointing ``--base-url`` at some other server
        must not hand it that key unasked.
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
    async def generate(cls, call: Call) -> AsyncIterator[str]:
        raise NotImplementedError
        yield  # pragma: no cover
