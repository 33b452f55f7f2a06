"""``python -m ipychat``: the offline demo in a terminal.

Starts the built-in emulator on 127.0.0.1 and streams one answer from each
classic provider into the terminal, chunk by chunk, through the same
providers a notebook uses.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import errors
from .emulator import DEMO_COOKIES, EmulatorServer, base_url_for
from .providers import get_provider
from .targets import CLASSIC

QUESTION = "Explain list comprehensions in two sentences."


async def stream_one(name: str, url: str, question: str, out) -> None:
    provider = get_provider(name)
    kwargs = {"base_url": base_url_for(name, url)}
    if name == "openassistant":
        kwargs["cookies"] = dict(DEMO_COOKIES)
    out.write(f"\n=== {provider.__name__} ===\n")
    messages = [{"role": "user", "content": question}]
    async for text in provider.create_async_generator(provider.model, messages, **kwargs):
        out.write(text)
        out.flush()
    out.write("\n")


async def main(question: str, providers, delay: float, out=sys.stdout) -> int:
    with EmulatorServer(delay=delay) as emulator:
        out.write(f"ipychat emulator at {emulator.url}\n")
        for name in providers:
            try:
                await stream_one(name, emulator.url, question, out)
            except errors.ChatError as err:
                out.write(f"\n{err}\n")
                return 1
    return 0


def cli(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ipychat", description=__doc__.split("\n")[0])
    parser.add_argument("question", nargs="?", default=QUESTION)
    parser.add_argument("--providers", default=",".join(CLASSIC),
                        help="comma-separated provider names (default: the four classic ones)")
    parser.add_argument("--delay", type=float, default=0.02, help="seconds between chunks")
    args = parser.parse_args(argv)
    names = [n.strip().lower() for n in args.providers.split(",") if n.strip()]
    try:
        return asyncio.run(main(args.question, names, args.delay))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(cli())
