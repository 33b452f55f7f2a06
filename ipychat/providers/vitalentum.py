"""Vitalentum: the history as a twice-encoded JSON string, SSE answer
with OpenAI-style chunks (shared/PROTOCOLS.md)."""

from __future__ import annotations

import json

from .base import HTTPProvider
from .http import check_status, open_session, request_options
from .openai_chunks import chunk_events, max_tokens_field

CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/116.0.0.0 Safari/537.36"
)


def headers(host: str) -> dict:
    return {
        "User-Agent": CHROME_UA,
        "Accept": "text/event-stream",
        "Accept-language": "de,en-US;q=0.7,en;q=0.3",
        "Origin": host,
        "Referer": f"{host}/",
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "cors",
        "Sec-Fetch-Site": "same-origin",
    }


def conversation(messages) -> str:
    history = [
        {"speaker": "human" if m["role"] == "user" else "bot", "text": m["content"]}
        for m in messages
    ]
    return json.dumps({"history": history})


class Vitalentum(HTTPProvider):
    url = "https://app.vitalentum.io"
    default_base_url = url
    working = False
    supports_gpt_35_turbo = True

    @classmethod
    async def generate(cls, call):
        # model is not part of this protocol; caller options go into the body.
        body = {"conversation": conversation(call.messages), "temperature": 0.7,
                **max_tokens_field(call), **call.options}
        async with open_session(call, headers(call.base_url)) as session:
            async with session.post(call.url("/api/converse-edge"), json=body,
                                    **request_options(call)) as response:
                await check_status(response, call)
                async for event in chunk_events(response, call):
                    yield event
