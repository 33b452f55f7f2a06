"""Shared fixtures and raw-HTTP helpers for the emulator tests (no tests here).

The raw helpers read with ``iter_chunks`` so tests see the HTTP chunk
boundaries the emulator made, whatever TCP did to them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import List, Optional

import aiohttp
import pytest

from ipychat.emulator import DEMO_COOKIES as OA_COOKIES
from ipychat.emulator import EmulatorServer

ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
USER_HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def server():
    with EmulatorServer(delay=0) as emulator:
        yield emulator


@pytest.fixture
def emu(server):
    server.reset()
    return server


@dataclass
class Raw:
    status: int
    headers: dict
    chunks: List[bytes] = field(default_factory=list)
    #: The client error that ended the read early, if any.
    error: Optional[BaseException] = None

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def json(self):
        return json.loads(self.body)

    def sse(self) -> List[tuple]:
        """(event name or None, data text) of every event in the body."""
        events = []
        for block in self.body.decode("utf-8").split("\n\n"):
            if not block.strip():
                continue
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append((fields.get("event"), fields.get("data")))
        return events

    def strict_sse(self) -> List[tuple]:
        """(event name or None, parsed data) of every event, asserting the WHATWG
        framing the emulator promises: UTF-8, ``\\n`` line ends, an optional
        ``event:`` line then one ``data:`` line per event, a blank line after each."""
        text = self.body.decode("utf-8")
        assert text.endswith("\n\n") and "\r" not in text
        events = []
        for block in text[:-2].split("\n\n"):
            lines = block.split("\n")
            name = lines.pop(0)[len("event: "):] if lines[0].startswith("event: ") else None
            assert len(lines) == 1 and lines[0].startswith("data: "), block
            data = lines[0][len("data: "):]
            events.append((name, data if data == "[DONE]" else json.loads(data)))
        return events

    def lines(self) -> List[dict]:
        return [json.loads(line) for line in self.body.decode("utf-8").splitlines() if line]


async def fetch(method: str, url: str, **kwargs) -> Raw:
    """One request; the body as the HTTP chunks that arrived, and how it ended."""
    cookies = kwargs.pop("cookies", None)
    async with aiohttp.ClientSession(cookies=cookies,
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.request(method, url, **kwargs) as response:
            raw = Raw(response.status, dict(response.headers))
            pending = b""
            try:
                # A busy machine may hand one HTTP chunk over in pieces: join
                # them until its end, so that chunks are the server's writes.
                async for data, chunk_ends in response.content.iter_chunks():
                    pending += data
                    # The terminating zero-length chunk may be reported on its own.
                    if chunk_ends and pending:
                        raw.chunks.append(pending)
                        pending = b""
            except aiohttp.ClientPayloadError as err:
                raw.error = err
            if pending:
                raw.chunks.append(pending)
            return raw


async def post(url: str, body=None, **kwargs) -> Raw:
    return await fetch("POST", url, json=body, **kwargs)


def openai_texts(raw: Raw) -> List[str]:
    """``choices[0].delta.content`` of each chunk, up to ``[DONE]``."""
    texts = []
    for _, data in raw.sse():
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        for choice in chunk.get("choices", []):
            if choice["delta"].get("content"):
                texts.append(choice["delta"]["content"])
    return texts


def anthropic_texts(raw: Raw) -> List[str]:
    return [json.loads(data)["delta"]["text"] for event, data in raw.sse()
            if event == "content_block_delta"]


def ollama_texts(raw: Raw) -> List[str]:
    return [line["message"]["content"] for line in raw.lines()
            if "message" in line and line["message"]["content"]]


def user(text: str) -> list:
    return [{"role": "user", "content": text}]


# -- one raw request per protocol, and how to read its answer back ------------

PROTOCOLS = ("cromicle", "openassistant", "vitalentum", "lockchat", "openai", "ollama",
             "anthropic")
MODELS = {"openassistant": "OA_SFT_Llama_30B_6", "lockchat": "gpt-3.5-turbo",
          "openai": "gpt-4o", "ollama": "llama3.2", "anthropic": "claude-3-5-haiku-latest"}
#: Whether the protocol's stream has an end marker that ``no_end`` leaves out.
HAS_END = {"cromicle": False, "openassistant": True, "vitalentum": True, "lockchat": True,
           "openai": True, "ollama": True, "anthropic": True}


async def send(protocol: str, url: str, text: str, stream: bool = True) -> Raw:
    """Ask ``protocol`` at the emulator ``url`` with one user message ``text``, raw."""
    messages = user(text)
    model = MODELS.get(protocol)
    if protocol == "cromicle":
        digest = hashlib.sha256(b"abc" + text.encode("utf-8")).hexdigest()
        return await post(url + "/chat", {"message": text, "token": "abc", "hash": digest})
    if protocol == "openassistant":
        return await send_openassistant(url, text, model)
    if protocol == "vitalentum":
        history = json.dumps({"history": [{"speaker": "human", "text": text}]})
        return await post(url + "/api/converse-edge", {"conversation": history,
                                                       "temperature": 0.7})
    if protocol in ("openai", "lockchat"):
        agent = {"User-Agent": "ChatX/39 CFNetwork/1408.0.4 Darwin/22.5.0"} \
            if protocol == "lockchat" else {}
        return await post(url + "/v1/chat/completions",
                          {"model": model, "messages": messages, "stream": stream},
                          headers=agent)
    if protocol == "ollama":
        return await post(url + "/ollama/api/chat",
                          {"model": model, "messages": messages, "stream": stream})
    return await post(url + "/v1/messages", {"model": model, "max_tokens": 100,
                                             "messages": messages, "stream": stream},
                      headers=ANTHROPIC_HEADERS)


async def send_openassistant(url: str, text: str, model: str,
                             sampling: Optional[dict] = None) -> Raw:
    chat = (await post(url + "/api/chat", cookies=OA_COOKIES)).json()["id"]
    prompter = {"chat_id": chat, "content": f"<s>[INST]\n{text}\n[/INST]", "parent_id": None}
    parent = (await post(url + "/api/chat/prompter_message", prompter,
                         cookies=OA_COOKIES)).json()["id"]
    assistant = {"chat_id": chat, "parent_id": parent, "model_config_name": model,
                 "sampling_parameters": sampling or {}, "plugins": []}
    message = (await post(url + "/api/chat/assistant_message", assistant,
                          cookies=OA_COOKIES)).json()["id"]
    return await post(f"{url}/api/chat/events?chat_id={chat}&message_id={message}",
                      cookies=OA_COOKIES)


def texts(protocol: str, raw: Raw) -> List[str]:
    """The answer's text pieces as the protocol frames them."""
    if protocol == "cromicle":
        return [raw.body.decode("utf-8")] if raw.body else []
    if protocol == "openassistant":
        return [json.loads(data)["text"] for _, data in raw.sse()
                if json.loads(data)["event_type"] == "token"]
    if protocol == "ollama":
        return ollama_texts(raw)
    if protocol == "anthropic":
        return anthropic_texts(raw)
    return openai_texts(raw)


END_MARKERS = {"ollama": b'"done":true', "anthropic": b"event: message_stop\n",
               "openassistant": b'"event_type":"message"'}


def has_end(protocol: str, raw: Raw) -> bool:
    return END_MARKERS.get(protocol, b"data: [DONE]\n\n") in raw.body
