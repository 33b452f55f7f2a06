"""From an understood request to bytes on the wire, with its faults applied.

Each protocol supplies a ``Framing`` (how reasoning, text, errors, usage and
end markers look in its stream); ``plan.py`` decides what the answer carries;
everything about timing, faults and cut connections is here once.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import List, Optional, Tuple, Union

from aiohttp import web

from .faults import FaultBook, FaultError, Faults, parse_directives
from .plan import Asked, Plan, make_plan
from .requestlog import Recorded, RequestLog
from .tooluse import ToolState, planned_calls

#: Stands for the invalid bytes while a frame is built as text.
_INVALID_MARK = "@@emulator-invalid-utf8@@"
INVALID_BYTES = b"\xff\xfe"
#: How long a handler waits for its own dropped connection to cancel it.
DROP_GRACE = 2.0
#: What old OpenAI-compatible servers answer to a field they do not know.
STREAM_OPTIONS_REJECTED = "Unrecognized request argument supplied: stream_options"


@dataclass
class State:
    """What the app shares between requests (``request.app[STATE]``)."""

    delay: float
    faults: FaultBook = field(default_factory=FaultBook)
    log: RequestLog = field(default_factory=RequestLog)
    #: Per-protocol bookkeeping (OpenAssistant chats, ids).
    extra: dict = field(default_factory=dict)


STATE = web.AppKey("emulator_state", State)
# RequestKey is new in aiohttp 3.13; older versions take a plain string.
RECORD = (web.RequestKey("emulator_record", Recorded) if hasattr(web, "RequestKey")
          else "emulator_record")


def dumps(value) -> bytes:
    # Raw UTF-8, as real services send it (and so split_utf8 has bytes to split).
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sse(data, event: Optional[str] = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    payload = data if isinstance(data, bytes) else dumps(data)
    return head + b"data: " + payload + b"\n\n"


def fault_message(status: int) -> str:
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    return f"emulator fault: HTTP {status} {reason}"


class Framing:
    """How one protocol frames an answer. Subclasses override what differs.

    ``plan`` is the answer being framed: ``planned()`` binds it before any
    frame is made, so a framing's methods read its pieces, finish word and counts."""

    content_type = "text/event-stream"
    #: The protocol's finish words for a normal end, a cut by the token limit, tool calls.
    stop_word, length_word, tool_word = "stop", "length", "tool_calls"
    #: Whether the protocol has a non-streamed JSON answer (``whole()``).
    has_whole = False
    plan: Plan = Plan()

    def bind(self, plan: Plan) -> "Framing":
        self.plan = plan
        return self

    def head(self) -> List[bytes]:
        return []

    def reasoning(self, piece: str) -> bytes:
        """One piece of reasoning; only asked of protocols that have a form for it."""
        raise NotImplementedError

    def between(self) -> List[bytes]:
        """Frames after the reasoning and before the answer."""
        return []

    def text(self, piece: str) -> bytes:
        raise NotImplementedError

    def tail(self) -> List[bytes]:
        """Closing frames that are not the end marker (tool calls among them)."""
        return []

    def end(self) -> List[bytes]:
        """The end marker, left out by ``no_end``."""
        return []

    def error(self, message: str) -> Optional[bytes]:
        """The in-band error event; None: the protocol has none (drop instead)."""
        return None

    def malformed(self) -> bytes:
        return b"data: {\"choices\": [{\"delta\": \n\n"

    def unknown(self) -> Optional[bytes]:
        return None

    def quirk(self, model: Optional[str]) -> Optional[bytes]:
        return None

    def whole(self) -> bytes:
        """The body of a non-streamed answer."""
        raise NotImplementedError

    @classmethod
    def error_body(cls, status: int, message: str) -> Tuple[bytes, str]:
        return dumps({"error": message}), "application/json"

    def invalid_text(self) -> bytes:
        return self.text(_INVALID_MARK).replace(_INVALID_MARK.encode(), INVALID_BYTES)


@dataclass
class Turn:
    """One understood chat request, ready to be answered."""

    protocol: str
    messages: list
    model: Optional[str]
    framing: Framing
    stream: bool = True
    directive_source: str = ""
    asked: Asked = field(default_factory=Asked)
    tools: ToolState = field(default_factory=ToolState)


@dataclass(frozen=True)
class Pause:
    seconds: float


class Drop:
    """Close the connection at once, without the HTTP terminating chunk."""


Step = Union[bytes, Pause, Drop]


def stream_steps(framing: Framing, faults: Faults, delay: float,
                 model: Optional[str] = None) -> List[Step]:
    """The timed frames of ``framing.plan``; mid-stream faults come after
    ``faults.after`` pieces, reasoning and answer counted together."""
    plan = framing.plan
    steps: List[Step] = list(framing.head())
    quirk = framing.quirk(model) if faults.quirk else None
    if quirk is not None:
        return steps + [quirk] + framing.end()
    frames = [framing.reasoning(p) for p in plan.reasoning] + [framing.text(p)
                                                                for p in plan.pieces]
    opening = len(plan.reasoning) if plan.reasoning else None  # where between() goes
    at = min(faults.after, len(frames))
    for i, frame in enumerate(frames):
        if i == at and _mid(steps, framing, faults):
            return steps
        if i and delay:
            steps.append(Pause(delay))
        if i == opening:
            steps.extend(framing.between())
        steps.append(frame)
    if at == len(frames) and _mid(steps, framing, faults):
        return steps
    if opening == len(frames):  # the limit left reasoning only
        steps.extend(framing.between())
    return steps + framing.tail() + ([] if faults.no_end else framing.end())


def _mid(steps: List[Step], framing: Framing, faults: Faults) -> bool:
    """Append the mid-stream faults; True when the stream ends there."""
    if faults.stall_mid:
        steps.append(Pause(faults.stall_mid))
    if faults.unknown_event and framing.unknown() is not None:
        steps.append(framing.unknown())
    if faults.invalid_utf8:
        steps.append(framing.invalid_text())
    if faults.malformed:
        steps.append(framing.malformed())
    error = framing.error(fault_message(500)) if faults.error_event else None
    if error is not None:
        steps.append(error)
        return True
    if faults.drop or faults.error_event:
        steps.append(Drop())
        return True
    return False


def whole_steps(framing: Framing, faults: Faults) -> Tuple[List[Step], int]:
    """A non-streamed body and the Content-Length it announces; mid-stream
    faults land halfway through it."""
    plan = framing.plan
    if faults.invalid_utf8:
        text = plan.text[:1] + _INVALID_MARK + plan.text[1:]
        framing.bind(replace(plan, pieces=(text,)))
    body = framing.whole().replace(_INVALID_MARK.encode(), INVALID_BYTES)
    half = len(body) // 2
    steps: List[Step] = [body[:half]]
    if faults.stall_mid:
        steps.append(Pause(faults.stall_mid))
    if faults.drop:
        return steps + [Drop()], len(body)
    if faults.malformed:  # cut JSON, announced as complete
        return steps, half
    return steps + [body[half:]], len(body)


def utf8_cuts(data: bytes) -> List[bytes]:
    """``data`` cut in the middle of every multi-byte UTF-8 character."""
    cuts, i = [], 0
    while i < len(data):
        lead = data[i]
        size = 4 if lead >= 0xF0 else 3 if lead >= 0xE0 else 2 if lead >= 0xC0 else 1
        if size > 1:
            cuts.append(min(i + size // 2, len(data)))
        i += size
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


async def perform(request: web.Request, response: web.StreamResponse, steps: List[Step],
                  split_utf8: bool) -> None:
    for step in steps:
        if isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Drop):
            await drop(request)
        else:
            # Each write is its own HTTP chunk, so the cuts reach the client as made.
            for part in (utf8_cuts(step) if split_utf8 else [step]):
                await response.write(part)


async def drop(request: web.Request) -> None:
    state = request.app[STATE]
    state.log.note(request[RECORD], dropped=True)
    request.transport.close()
    # The closed connection cancels this handler (handler_cancellation=True).
    await asyncio.sleep(DROP_GRACE)
    raise ConnectionResetError("connection dropped by the emulator")


def error_response(framing: Framing, status: int, message: str,
                   body: Optional[str] = None, faults: Optional[Faults] = None) -> web.Response:
    if body is not None:
        data, content_type = body.encode("utf-8"), "text/plain"
    else:
        data, content_type = framing.error_body(status, message)
    headers = {"Content-Type": content_type, **retry_headers(status, faults)}
    if 300 <= status < 400:
        headers["Location"] = "/_emulator/health"
    return web.Response(status=status, body=data, headers=headers)


def retry_headers(status: int, faults: Optional[Faults]) -> dict:
    """What a server says about retrying: its wait, and its own yes or no."""
    headers = {}
    if faults is not None and faults.retry_after is not None:
        headers["Retry-After"] = faults.retry_after
    elif status in (429, 503):
        headers["Retry-After"] = "1"
    if faults is not None and faults.retry_after_ms is not None:
        headers["retry-after-ms"] = str(faults.retry_after_ms)
    if faults is not None and faults.should_retry is not None:
        headers["x-should-retry"] = "true" if faults.should_retry else "false"
    return headers


async def reset(request: web.Request) -> None:
    """Cut the connection before any byte of the answer (a reset, to the client)."""
    request.app[STATE].log.note(request[RECORD], dropped=True)
    request.transport.close()
    await asyncio.sleep(DROP_GRACE)  # the closed connection cancels this handler
    raise ConnectionResetError("connection reset by the emulator")


async def answer(request: web.Request, turn: Turn) -> web.StreamResponse:
    """Answer ``turn`` with the faults it gets (queued ones and its own directive)."""
    state = request.app[STATE]
    try:
        directive = parse_directives(turn.directive_source)
    except FaultError as err:
        return error_response(turn.framing, 400, f"bad emulator directive: {err}")
    faults = state.faults.take(directive, turn.messages)
    state.log.note(request[RECORD], faults=faults.active())
    try:
        calls = planned_calls(turn.tools, faults)
    except FaultError as err:
        return error_response(turn.framing, 400, f"bad emulator directive: {err}")
    if faults.stall_first:
        await asyncio.sleep(faults.stall_first)
    streamed = turn.stream and not (faults.whole and turn.framing.has_whole)
    # A non-streamed answer has no in-band error: it becomes an error status.
    status = faults.status or (500 if faults.error_event and not streamed else None)
    if faults.reset:
        await reset(request)
    if status:
        return error_response(turn.framing, status, fault_message(status), faults.body, faults)
    if faults.reject_stream_options and turn.asked.stream_options:
        return error_response(turn.framing, 400, STREAM_OPTIONS_REJECTED)
    if faults.empty:
        return web.Response(status=200, body=b"",
                            headers={"Content-Type": turn.framing.content_type})
    response, steps = planned(turn, faults, state.delay, streamed, calls)
    try:
        await response.prepare(request)
        await perform(request, response, steps, faults.split_utf8)
        await response.write_eof()
    except ConnectionResetError:
        # The client left (even before the headers went out); aiohttp copes
        # with the closed transport, and nothing is logged as a server error.
        state.log.note(request[RECORD], disconnected=not request[RECORD].dropped)
    return response


def planned(turn: Turn, faults: Faults, delay: float, streamed: bool,
            calls: tuple = ()) -> Tuple[web.StreamResponse, List[Step]]:
    """The response to prepare and the steps that write its body."""
    turn.framing.bind(make_plan(turn, faults, calls))
    if streamed:
        delay = delay if faults.delay is None else faults.delay
        steps = stream_steps(turn.framing, faults, delay, turn.model)
        return web.StreamResponse(headers={"Content-Type": turn.framing.content_type,
                                           "Cache-Control": "no-cache"}), steps
    steps, length = whole_steps(turn.framing, faults)
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    if not faults.split_utf8:  # chunked instead, so the cuts stay visible as HTTP chunks
        response.content_length = length
    return response, steps
