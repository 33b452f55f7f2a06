"""Cromicle: one POST, a raw UTF-8 text stream (shared/PROTOCOLS.md)."""

from __future__ import annotations

from hashlib import sha256

from .. import errors
from ..events import Text
from ..messages import format_prompt
from ..streams import utf8_text
from .base import HTTPProvider
from .http import check_status, open_session, request_options

HEADERS = {"accept": "*/*", "content-type": "application/json"}
TOKEN = "abc"


def create_payload(message: str) -> dict:
    digest = sha256(TOKEN.encode() + message.encode("utf-8")).hexdigest()
    return {"message": message, "token": TOKEN, "hash": digest}


class Cromicle(HTTPProvider):
    url = "https://cromicle.top"
    default_base_url = url
    working = False
    supports_gpt_35_turbo = True
    takes_max_tokens = False  # the protocol has no field for it

    @classmethod
    async def generate(cls, call):
        # model and extra options are not part of this protocol.
        payload = create_payload(format_prompt(call.messages))
        async with open_session(call, HEADERS) as session:
            async with session.post(call.url("/chat"), json=payload,
                                    **request_options(call)) as response:
                await check_status(response, call)
                answered = False
                # Incremental decoding: the original broke on a character split across chunks.
                async for text in utf8_text(response.content.iter_any()):
                    answered = True
                    yield Text(text)
        if not answered:
            # Raw text has no end marker: an empty body is a failure, not an empty answer.
            raise errors.StreamCutShort("the server sent no answer text", provider=call.provider)
