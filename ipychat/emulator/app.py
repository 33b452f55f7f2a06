"""The emulator's aiohttp application: every protocol's routes, the request
log, and the ``/_emulator/...`` control endpoints tests drive it with."""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import DEFAULT_DELAY, anthropic, classic, ollama, openai_api
from .faults import FaultError
from .requestlog import Recorded, visible_headers
from .wire import RECORD, STATE, State, dumps

CONTROL = "/_emulator"
PROTOCOLS = ("cromicle", "openassistant", "vitalentum", "lockchat", "openai", "ollama",
             "anthropic")


def protocol_of(request: web.Request):
    path = request.path
    if path.startswith(ollama.PREFIX + "/") or path == ollama.PREFIX:
        return "ollama"
    if path == "/v1/messages":
        return "anthropic"
    if path.startswith("/v1/"):
        return "lockchat" if openai_api.is_lockchat(request) else "openai"
    if path == "/chat":
        return "cromicle"
    if path.startswith("/api/chat"):
        return "openassistant"
    if path == "/api/converse-edge":
        return "vitalentum"
    return None


@web.middleware
async def recording(request: web.Request, handler):
    """Log every protocol request with its fate: finished, dropped, or the client left."""
    if request.path.startswith(CONTROL + "/"):
        return await handler(request)
    log = request.app[STATE].log
    body = await request.read()
    record = log.add(Recorded(request.method, request.path, dict(request.query),
                              visible_headers(request.headers),
                              body.decode("utf-8", "replace"), protocol_of(request)))
    request[RECORD] = record
    try:
        response = await handler(request)
    except web.HTTPException as err:
        log.note(record, status=err.status, finished=True)
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        # With handler_cancellation=True a client that leaves cancels its handler.
        log.note(record, disconnected=not record.dropped)
        raise
    cut = record.disconnected or record.dropped
    log.note(record, status=response.status, finished=not cut)
    return response


def json_response(value, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(value), content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "protocols": list(PROTOCOLS)})


async def requests_log(request: web.Request) -> web.Response:
    return json_response(request.app[STATE].log.as_json())


async def add_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        state.faults.push(await request.json())
    except ValueError as err:  # FaultError, or a body that is not JSON
        message = str(err) if isinstance(err, FaultError) else "send a JSON object of faults"
        return json_response({"error": message}, status=400)
    return json_response({"queued": state.faults.pending()})


async def list_faults(request: web.Request) -> web.Response:
    return json_response({"queued": request.app[STATE].faults.pending()})


async def reset(request: web.Request) -> web.Response:
    reset_state(request.app[STATE])
    return json_response({"status": "reset"})


def reset_state(state: State) -> None:
    state.faults.clear()
    state.log.clear()
    state.extra.clear()


async def show_state(request: web.Request) -> web.Response:
    chats = request.app[STATE].extra.get("openassistant") or classic.OAChats()
    return json_response({"openassistant": {"open_chats": sorted(chats.chats),
                                            "deleted_chats": list(chats.deleted)},
                          "queued_faults": request.app[STATE].faults.pending()})


CONTROL_ROUTES = [
    ("GET", f"{CONTROL}/health", health),
    ("GET", f"{CONTROL}/requests", requests_log),
    ("POST", f"{CONTROL}/faults", add_faults),
    ("GET", f"{CONTROL}/faults", list_faults),
    ("POST", f"{CONTROL}/reset", reset),
    ("GET", f"{CONTROL}/state", show_state),
]


def make_app(delay: float = DEFAULT_DELAY) -> web.Application:
    """The emulator app; ``delay``: seconds between streamed chunks."""
    app = web.Application(middlewares=[recording])
    app[STATE] = State(delay=float(delay))
    for routes in (classic.ROUTES, openai_api.ROUTES, ollama.ROUTES, anthropic.ROUTES,
                   CONTROL_ROUTES):
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)
    return app
