"""Byte-stream decoders shared by every provider: raw UTF-8 text, SSE, NDJSON.

Each decoder has an incremental core that is fed ``bytes`` chunks at any
boundary (``feed``) and told when the stream ends (``close``), plus an async
wrapper over an async iterable of chunks such as ``response.content.iter_any()``.
They are pure: no I/O, no provider knowledge. A protocol violation raises
``StreamDecodeError``; providers turn it into ``MalformedStreamError``.
"""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import AsyncIterable, AsyncIterator, List, Optional


class StreamDecodeError(ValueError):
    """Bytes that cannot be decoded; ``fragment`` is the offending piece."""

    def __init__(self, what: str, fragment: bytes | str = b""):
        super().__init__(what)
        self.what = what
        self.fragment = fragment


class _Deferred:
    """Hands out what was decoded before a bad byte, then fails.

    A network chunk may hold good text and then a bad byte; raising at once
    would lose the good part (the user's "text so far"). So ``feed`` keeps
    the error and returns what came before it; ``check()``, the next
    ``feed`` or ``close`` raises. Consumers call ``check()`` right after
    handing out a feed's results, so a stalled server cannot delay the error.
    """

    _failure: Optional[StreamDecodeError] = None

    def check(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _defer(self, err: StreamDecodeError) -> None:
        self._failure = err


class _LeadingBom:
    """Drops one UTF-8 byte order mark at the very start of a stream.

    WHATWG "UTF-8 decode" strips exactly one leading BOM; a second one is
    content. The BOM may arrive split across the first chunks, so a prefix
    of it is held back until it is known to be (or not be) a BOM.
    """

    def __init__(self):
        self.done = False
        self._head = b""

    def feed(self, chunk: bytes) -> bytes:
        head = self._head + chunk
        if len(head) < 3 and codecs.BOM_UTF8.startswith(head):
            self._head = head
            return b""
        self.done = True
        self._head = b""
        return head[3:] if head[:3] == codecs.BOM_UTF8 else head

    def close(self) -> bytes:
        """What was held back: the stream ended inside a would-be BOM."""
        self.done = True
        head, self._head = self._head, b""
        return head


# -- raw text -----------------------------------------------------------------


class Utf8Decoder(_Deferred):
    """Incremental UTF-8: a character split across chunks decodes once whole.

    One leading BOM is dropped, as browsers do for text.
    """

    def __init__(self):
        self._bom = _LeadingBom()
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def feed(self, chunk: bytes) -> str:
        self.check()
        if not self._bom.done:
            chunk = self._bom.feed(chunk)
        try:
            return self._decoder.decode(chunk)
        except UnicodeDecodeError as err:
            # err.object is the decoder's held bytes plus this chunk.
            self._defer(StreamDecodeError("invalid UTF-8", err.object[err.start : err.end + 8]))
            return err.object[: err.start].decode("utf-8")

    def close(self) -> str:
        self.check()
        tail = b"" if self._bom.done else self._bom.close()
        try:
            return self._decoder.decode(tail, final=True)
        except UnicodeDecodeError as err:
            raise StreamDecodeError("stream ends inside a UTF-8 character", err.object) from None


async def utf8_text(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Yield the text of a raw byte stream, never an empty string."""
    decoder = Utf8Decoder()
    async for chunk in chunks:
        text = decoder.feed(chunk)
        if text:
            yield text
        decoder.check()
    tail = decoder.close()
    if tail:
        yield tail


# -- lines --------------------------------------------------------------------


class LineSplitter:
    """Split bytes into lines ended by LF, CR or CRLF, across chunk boundaries.

    Lines come without their line end. One leading UTF-8 BOM is dropped
    (every user is a UTF-8 text protocol). A CR that ends one chunk ends its
    line at once; an LF that starts the next chunk is then the second half
    of that CRLF and is skipped.
    """

    def __init__(self):
        self._bom = _LeadingBom()
        self._parts: List[bytes] = []  # the unterminated line so far
        self._skip_lf = False

    def feed(self, chunk: bytes) -> List[bytes]:
        if not self._bom.done:
            chunk = self._bom.feed(chunk)
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            # Collect pieces of a long line instead of re-joining them on
            # every chunk (quadratic for a big line in small chunks).
            if chunk:
                self._parts.append(chunk)
            return []
        if self._parts:
            self._parts.append(chunk)
            chunk = b"".join(self._parts)
            self._parts = []
        # bytes.splitlines breaks at LF, CR and CRLF only, as SSE requires.
        lines = chunk.splitlines()
        last = chunk[-1]
        if last == 13:
            self._skip_lf = True
        elif last != 10:
            self._parts.append(lines.pop())
        return lines

    def close(self) -> Optional[bytes]:
        """The unterminated last line, if any."""
        if not self._bom.done:
            self._parts.append(self._bom.close())
        tail = b"".join(self._parts)
        self._parts = []
        self._skip_lf = False
        return tail or None


# -- Server-Sent Events -------------------------------------------------------


@dataclass(slots=True)
class ServerSentEvent:
    """One dispatched event.

    ``id`` is the stream's last event ID at dispatch (it persists across
    events until an ``id`` field changes it; "" when none was set) and
    ``retry`` the reconnection time in milliseconds then in force (None
    until a valid ``retry`` field).
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: Optional[int] = None


class SSEDecoder(_Deferred):
    """Server-Sent Events as the WHATWG HTML spec parses them.

    https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    One deliberate difference: invalid UTF-8 raises ``StreamDecodeError``
    where a browser would substitute U+FFFD. A final event without its
    blank line is not dispatched (spec: "If the file ends in the middle of
    an event ... the incomplete event is not dispatched").
    """

    def __init__(self):
        self._lines = LineSplitter()
        self._data: List[str] = []
        self._event = ""
        self._last_id = ""
        self._retry: Optional[int] = None

    def feed(self, chunk: bytes) -> List[ServerSentEvent]:
        self.check()
        events = []
        try:
            for line in self._lines.feed(chunk):
                if line[:6] == b"data: ":
                    # By far the most common line: skip the general field parsing.
                    try:
                        self._data.append(line[6:].decode("utf-8"))
                    except UnicodeDecodeError:
                        raise StreamDecodeError("invalid UTF-8 in an event line",
                                                line) from None
                elif line:
                    self._line(line)
                elif self._data:
                    events.append(self._dispatch())
                else:
                    # Spec: an empty data buffer dispatches nothing but still
                    # resets the event type.
                    self._event = ""
        except StreamDecodeError as err:
            self._defer(err)
        return events

    def close(self) -> List[ServerSentEvent]:
        """End of stream: pending data is discarded, as the spec says."""
        self.check()
        self._lines.close()
        self._data = []
        self._event = ""
        return []

    def _line(self, raw: bytes) -> None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StreamDecodeError("invalid UTF-8 in an event line", raw) from None
        field, _, value = line.partition(":")
        if value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        # A comment (empty field name) or any other field is ignored.

    def _dispatch(self) -> ServerSentEvent:
        data = self._data[0] if len(self._data) == 1 else "\n".join(self._data)
        event = ServerSentEvent(data, self._event or "message", self._last_id, self._retry)
        self._data = []
        self._event = ""
        return event


async def sse_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """Yield each dispatched event of an SSE byte stream."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
        decoder.check()
    decoder.close()


# -- newline-delimited JSON ---------------------------------------------------


class NDJSONDecoder(_Deferred):
    """One JSON value per line (UTF-8); blank lines are skipped."""

    def __init__(self):
        self._lines = LineSplitter()

    def feed(self, chunk: bytes) -> list:
        self.check()
        values = []
        try:
            for line in self._lines.feed(chunk):
                if line.strip():
                    values.append(self._parse(line))
        except StreamDecodeError as err:
            self._defer(err)
        return values

    def close(self) -> list:
        self.check()
        tail = self._lines.close()
        return [self._parse(tail)] if tail and tail.strip() else []

    @staticmethod
    def _parse(line: bytes):
        # Decode first: json.loads(bytes) would guess UTF-16/32 from NUL
        # bytes and accept a BOM on any line, and NDJSON is UTF-8 only.
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise StreamDecodeError("invalid UTF-8 in a line", line) from None
        try:
            return json.loads(text)
        except ValueError:
            raise StreamDecodeError("a line is not JSON", line) from None


async def ndjson(chunks: AsyncIterable[bytes]) -> AsyncIterator[object]:
    """Yield each JSON value of a newline-delimited JSON byte stream."""
    decoder = NDJSONDecoder()
    async for chunk in chunks:
        for value in decoder.feed(chunk):
            yield value
        decoder.check()
    for value in decoder.close():
        yield value
