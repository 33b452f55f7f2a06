"""OpenAssistant: a five-step chat over one cookie session (shared/PROTOCOLS.md).

Fixed from the original: every step's status is checked, an error event in
the stream raises, and the chat is deleted however the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from .. import errors
from ..events import Text
from ..messages import format_prompt
from ..streams import sse_events
from .base import HTTPProvider
from .http import Call, check_status, open_session, parse_json, request_options
from .vitalentum import CHROME_UA

HEADERS = {"User-Agent": CHROME_UA}
SAMPLING_DEFAULTS = {
    "top_k": 50,
    "top_p": None,
    "typical_p": None,
    "temperature": 0.35,
    "repetition_penalty": 1.1111111111111112,
    "max_new_tokens": 1024,
}
#: Seconds the best-effort DELETE may take once the answer is over.
CLEANUP_TIMEOUT = 3.0
COOKIE_HINT = (
    "Pass cookies={'__Secure-next-auth.session-token': '...'} copied from your browser "
    "while logged in to open-assistant.io (or use %chat demo on for the emulator)."
)


def sampling_parameters(call: Call) -> dict:
    limit = {} if call.max_tokens is None else {"max_new_tokens": call.max_tokens}
    return {**SAMPLING_DEFAULTS, **limit, **call.options}


def prompt_content(messages) -> str:
    return "<s>[INST]\n" + format_prompt(messages) + "\n[/INST]"


class OpenAssistant(HTTPProvider):
    url = "https://open-assistant.io/chat"
    default_base_url = "https://open-assistant.io"
    needs_auth = True
    working = False
    model = "OA_SFT_Llama_30B_6"

    @classmethod
    async def generate(cls, call: Call):
        if not call.cookies:
            raise errors.AuthenticationRequired(
                "needs your open-assistant.io cookies", provider=call.provider, hint=COOKIE_HINT
            )
        async with open_session(call, HEADERS) as session:
            chat_id = await cls._post_json(session, call, "/api/chat", None, "id")
            try:
                # aclosing: close the event stream before the chat is deleted.
                async with contextlib.aclosing(cls._answer(session, call, chat_id)) as events:
                    async for event in events:
                        yield event
            finally:
                await cls._delete_chat(session, call, chat_id)

    @classmethod
    async def _answer(cls, session, call: Call, chat_id):
        prompter = {"chat_id": chat_id, "content": prompt_content(call.messages),
                    "parent_id": None}
        parent_id = await cls._post_json(session, call, "/api/chat/prompter_message",
                                         prompter, "id")
        assistant = {
            "chat_id": chat_id,
            "parent_id": parent_id,
            "model_config_name": call.model,
            "sampling_parameters": sampling_parameters(call),
            "plugins": [],
        }
        message_id = await cls._post_json(session, call, "/api/chat/assistant_message",
                                          assistant, "id")
        # params=: ids are quoted, whatever characters they hold.
        ids = {"chat_id": str(chat_id), "message_id": str(message_id)}
        async with session.post(call.url("/api/chat/events"), params=ids,
                                **request_options(call)) as response:
            await check_status(response, call)
            async for text in token_texts(response, call):
                yield Text(text)

    @classmethod
    async def _post_json(cls, session, call: Call, path: str, body, key: str):
        async with session.post(call.url(path), json=body, **request_options(call)) as response:
            await check_status(response, call)
            reply = parse_json(await response.read(), call, f"{path} did not answer JSON")
        if isinstance(reply, dict) and reply.get(key) is not None:
            return reply[key]
        if isinstance(reply, dict) and reply.get("message"):
            raise errors.ProviderError(str(reply["message"]), provider=call.provider)
        raise errors.MalformedStreamError(f"{path} answered without {key!r}", str(reply)[:80],
                                          provider=call.provider)

    @classmethod
    async def _delete_chat(cls, session, call: Call, chat_id) -> None:
        # Best effort, bounded: runs after success, failure and cancellation alike.
        async def delete():
            async with session.delete(call.url("/api/chat"), params={"chat_id": str(chat_id)},
                                      **request_options(call)):
                pass

        try:
            await asyncio.wait_for(delete(), CLEANUP_TIMEOUT)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            pass


async def token_texts(response: aiohttp.ClientResponse, call: Call):
    """Text of each ``token`` event; an ``error`` event raises. The stream
    ends when the server closes it (no [DONE] in this protocol), so a stream
    without any text is a failure, not an empty answer. It is
    ``text/event-stream``: read by the same WHATWG decoder as the others."""
    answered = False
    async with contextlib.aclosing(sse_events(response.content.iter_any())) as events:
        async for event in events:
            text = event_text(event.data, call)
            if text:
                answered = True
                yield text
    if not answered:
        raise errors.StreamCutShort("the server sent no answer text", provider=call.provider)


def event_text(data: str, call: Call) -> str:
    event = parse_json(data, call)
    kind = event.get("event_type") if isinstance(event, dict) else None
    if kind == "token":
        return event.get("text") or ""
    if kind == "error":
        message = event.get("error") or event.get("message") or "the server reported an error"
        raise errors.ProviderError(str(message), provider=call.provider)
    return ""
