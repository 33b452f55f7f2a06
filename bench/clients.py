"""Every stream consumer the benchmarks compare, each as ``async fn(base) -> parts``.

Each opens its own connection, reads one whole answer and returns the text
pieces it decoded, unjoined: the caller joins them after its stopwatch
stopped (joining megabytes of text is no decoder's cost) and checks them
against ``payload``, so that a fast decoder that gets the text wrong
cannot win. The raw text consumers also take a ``sink`` to append to
instead (``Count``: keep only the length, as the byte-counting floor does).
ipychat's providers are called as a user of the library would call them.
"""

from __future__ import annotations

import codecs
import json

import aiohttp

OPENAI_PATH = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hi"}]
BODY = {"model": "gpt-3.5-turbo", "messages": MESSAGES, "stream": True}


class Count:
    """A sink that keeps only how many characters it was given."""

    def __init__(self):
        self.total = 0

    def append(self, piece: str) -> None:
        self.total += len(piece)


# -- references written here ----------------------------------------------------


async def raw_bytes(base: str, path: str = OPENAI_PATH) -> int:
    """The floor: aiohttp reading the body, only counting its bytes."""
    total = 0
    async with aiohttp.ClientSession() as session:
        async with session.post(base + path, json=BODY) as response:
            async for chunk in response.content.iter_any():
                total += len(chunk)
    return total


async def minimal_text(base: str, path: str = "/chat", sink=None):
    """A minimal correct raw text decode: aiohttp bytes through an incremental UTF-8 decoder."""
    parts = [] if sink is None else sink
    decoder = codecs.getincrementaldecoder("utf-8")()
    async with aiohttp.ClientSession() as session:
        async with session.post(base + path, json=BODY) as response:
            async for chunk in response.content.iter_any():
                parts.append(decoder.decode(chunk))
    parts.append(decoder.decode(b"", final=True))
    return parts


async def minimal_decode(base: str, path: str = OPENAI_PATH) -> list:
    """A minimal correct decode: split lines, ``json.loads`` each ``data:``."""
    parts, pending = [], b""
    async with aiohttp.ClientSession() as session:
        async with session.post(base + path, json=BODY) as response:
            async for chunk in response.content.iter_any():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if not line.startswith(b"data: "):
                        continue
                    if line == b"data: [DONE]":
                        return parts
                    content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if content:
                        parts.append(content)
    raise ValueError("stream ended before [DONE]")


async def seed_loop(base: str, path: str = OPENAI_PATH) -> list:
    """The 2023 seed providers' loop (shared/seeds/003*): ``async for line in content``."""
    parts = []
    async with aiohttp.ClientSession() as session:
        async with session.post(base + path, json=BODY) as response:
            response.raise_for_status()
            async for line in response.content:
                line = line.decode()
                if line.startswith("data: "):
                    if line.startswith("data: [DONE]"):
                        break
                    line = json.loads(line[6:-1])
                    content = line["choices"][0]["delta"].get("content")
                    if content:
                        parts.append(content)
    return parts


class OpenAISDK:
    """The official SDK, ``AsyncOpenAI(...).chat.completions.create(stream=True)``.

    One client for all runs (as an application would keep one); that spares
    the SDK its client set-up on every run, so its figure is if anything kind.
    """

    def __init__(self):
        self._clients = {}

    async def __call__(self, base: str) -> list:
        client = self._client(base)
        parts = []
        stream = await client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES,
                                                      stream=True)
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
        return parts

    def _client(self, base: str):
        from openai import AsyncOpenAI

        if base not in self._clients:
            self._clients[base] = AsyncOpenAI(base_url=base + "/v1", api_key="bench",
                                              max_retries=0)
        return self._clients[base]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


# -- ipychat ------------------------------------------------------------------


def provider(name: str):
    """``async fn(base) -> text`` through ipychat's provider ``name`` (g4f entry point)."""
    from ipychat.providers import get_provider

    cls = get_provider(name)

    async def consume(base: str, sink=None):
        parts = [] if sink is None else sink
        async for text in cls.create_async_generator(None, MESSAGES, base_url=base):
            parts.append(text)
        return parts

    consume.__name__ = f"ipychat_{name}"
    return consume


def target(name: str):
    """Like ``provider`` but through ``Target.stream``, the stack ``%%chat`` uses
    (its events; the text ones kept)."""
    from ipychat.targets import resolve

    async def consume(base: str) -> list:
        parts = []
        async for event in resolve(name, base_url=base, demo=False).stream(MESSAGES):
            if event.kind == "text":
                parts.append(event.text)
        return parts

    consume.__name__ = f"ipychat_target_{name}"
    return consume
