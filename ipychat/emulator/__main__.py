"""``python -m ipychat.emulator [--host H] [--port N] [--delay S]``: print the
base URL, then serve until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import DEFAULT_DELAY, _url


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ipychat.emulator",
        description="Serve every chat protocol ipychat speaks, from one local port.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument("--delay", type=float, default=DEFAULT_DELAY,
                        help=f"seconds between streamed chunks (default {DEFAULT_DELAY})")
    return parser.parse_args(argv)


async def serve(host: str, port: int, delay: float) -> None:
    from aiohttp import web

    from .app import make_app

    runner = web.AppRunner(make_app(delay), handler_cancellation=True, shutdown_timeout=0.5)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        print(_url(host, runner.addresses[0][1]), flush=True)
        await asyncio.Event().wait()  # until Ctrl-C cancels it
    finally:
        await runner.cleanup()


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(serve(args.host, args.port, args.delay))
    except KeyboardInterrupt:
        pass
    except OSError as err:
        print(f"cannot serve on {args.host}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
