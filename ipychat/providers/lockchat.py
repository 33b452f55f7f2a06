"""Lockchat: OpenAI-compatible chat completions with one known server quirk
(shared/PROTOCOLS.md)."""

from __future__ import annotations

import contextlib
import re

from .. import errors
from .base import SHOWN, HTTPProvider
from .http import check_status, open_session, request_options
from .openai_chunks import chunk_events, max_tokens_field

HEADERS = {"user-agent": "ChatX/39 CFNetwork/1408.0.4 Darwin/22.5.0"}
MISSING_MODEL = re.compile(r"The model: `([^`]*)` does not exist")


class _ModelMissing(Exception):
    """The server said the model does not exist (it sometimes says so wrongly)."""


def _watch(line: str) -> None:
    # Any line, as in the original: the server's error need not be an SSE event.
    if "does not exist" in line and MISSING_MODEL.search(line):
        raise _ModelMissing(line)


def temperature_of(options: dict) -> float:
    value = options.get("temperature", 0.7)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise errors.UsageError(f"temperature must be a number, not {value!r}") from None


class Lockchat(HTTPProvider):
    url = "http://supertest.lockchat.app"
    default_base_url = url
    working = False
    supports_stream = True
    supports_gpt_35_turbo = True
    supports_gpt_4 = True
    model = "gpt-3.5-turbo"

    @classmethod
    async def generate(cls, call):
        # The server sometimes claims the model is missing: retry once, for real
        # (the original threw its retry away), and only before any text was shown.
        for attempt in (1, 2):
            started = False
            try:
                # aclosing: stopping early must close this attempt's connection now.
                async with contextlib.aclosing(cls._attempt(call)) as events:
                    async for event in events:
                        started = started or event.kind in SHOWN
                        yield event
                return
            except _ModelMissing as err:
                if started or attempt == 2:
                    raise errors.ModelNotFound(call.model, str(err),
                                               provider=call.provider) from None

    @classmethod
    async def _attempt(cls, call):
        extra = {k: v for k, v in call.options.items() if k != "temperature"}
        body = {
            "temperature": temperature_of(call.options),
            "messages": call.messages,
            "model": call.model,
            "stream": True,
            **max_tokens_field(call),
            **extra,
        }
        async with open_session(call, HEADERS) as session:
            async with session.post(call.url("/v1/chat/completions"), json=body,
                                    **request_options(call)) as response:
                await check_status(response, call)
                async for event in chunk_events(response, call, watch=_watch):
                    yield event
