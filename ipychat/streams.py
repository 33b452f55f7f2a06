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


# -- raw text -----------------------------------------------------------------


class Utf8Decoder:
    """Incremental UTF-8: a character split across chunks decodes once whole."""

    def __init__(self):
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def feed(self, chunk: bytes) -> str:
        try:
            return self._decoder.decode(chunk)
        except UnicodeDecodeError as err:
            raise StreamDecodeError("invalid UTF-8", err.object[err.start : err.end + 8]) from None

    def close(self) -> str:
        try:
            return self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            raise StreamDecodeError("stream ends inside a UTF-8 character", err.object) from None


async def utf8_text(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Yield the text of a raw byte stream, never an empty string."""
    decoder = Utf8Decoder()
    async for chunk in chunks:
        text = decoder.feed(chunk)
        if text:
            yield text
    tail = decoder.close()
    if tail:
        yield tail


# -- lines --------------------------------------------------------------------


class LineSplitter:
    """Split bytes into lines ended by LF, CR or CRLF, across chunk boundaries.

    A CR that ends one chunk ends its line at once; an LF that starts the
    next chunk is then the second half of that CRLF and is skipped.
    """

    def __init__(self):
        self._tail = b""
        self._skip_lf = False

    def feed(self, chunk: bytes) -> List[bytes]:
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if self._tail:
            chunk = self._tail + chunk
        lines = chunk.splitlines(keepends=True)
        if not lines:
            self._tail = b""
            return lines
        last = lines[-1]
        if last[-1:] == b"\n":
            self._tail = b""
        elif last[-1:] == b"\r":
            self._tail = b""
            self._skip_lf = True
        else:
            self._tail = lines.pop()
        return [line.rstrip(b"\r\n") for line in lines]

    def close(self) -> Optional[bytes]:
        """The unterminated last line, if any."""
        tail, self._tail = self._tail, b""
        return tail or None


# -- Server-Sent Events -------------------------------------------------------


@dataclass
class ServerSentEvent:
    data: str
    event: str = "message"
    id: Optional[str] = None
    retry: Optional[int] = None


class SSEDecoder:
    """Server-Sent Events as the WHATWG HTML spec parses them.

    https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
    A final event without its blank line is not dispatched (spec: "If the
    file ends in the middle of an event ... the incomplete event is not
    dispatched").
    """

    def __init__(self):
        self._lines = LineSplitter()
        self._first = True
        self._bom_head = b""
        self._data: List[str] = []
        self._event = ""
        self._last_id: Optional[str] = None
        self._retry: Optional[int] = None
        self.pending = False  # a field was seen since the last dispatch

    def feed(self, chunk: bytes) -> List[ServerSentEvent]:
        if self._first and chunk:
            chunk = self._strip_bom(chunk)
            if chunk is None:
                return []
        events = []
        for line in self._lines.feed(chunk):
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> List[ServerSentEvent]:
        """End of stream: a trailing line without its blank line is dropped."""
        tail = self._lines.close()
        if tail is not None:
            self._line(tail)
        return []

    def _strip_bom(self, chunk: bytes) -> Optional[bytes]:
        # The BOM may itself be split across the first chunks.
        head = self._bom_head + chunk
        bom = codecs.BOM_UTF8
        if len(head) < len(bom) and bom.startswith(head):
            self._bom_head = head
            return None
        self._first = False
        self._bom_head = b""
        return head[len(bom) :] if head.startswith(bom) else head

    def _line(self, raw: bytes) -> Optional[ServerSentEvent]:
        if not raw:
            return self._dispatch()
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StreamDecodeError("invalid UTF-8 in an event line", raw) from None
        if line[0] == ":":
            return None
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        self._field(field, value)
        return None

    def _field(self, field: str, value: str) -> None:
        if field == "data":
            self._data.append(value)
            self.pending = True
        elif field == "event":
            self._event = value
            self.pending = True
        elif field == "id":
            if "\0" not in value:
                self._last_id = value
        elif field == "retry":
            if value.isdigit() and value.isascii():
                self._retry = int(value)
        # any other field is ignored, as the spec says

    def _dispatch(self) -> Optional[ServerSentEvent]:
        self.pending = False
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._last_id,
            retry=self._retry,
        )
        self._data = []
        self._event = ""
        return event


async def sse_events(chunks: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """Yield each dispatched event of an SSE byte stream."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event
    decoder.close()


# -- newline-delimited JSON ---------------------------------------------------


class NDJSONDecoder:
    """One JSON value per line; blank lines are skipped."""

    def __init__(self):
        self._lines = LineSplitter()

    def feed(self, chunk: bytes) -> list:
        return [self._parse(line) for line in self._lines.feed(chunk) if line.strip()]

    def close(self) -> list:
        tail = self._lines.close()
        return [self._parse(tail)] if tail and tail.strip() else []

    @staticmethod
    def _parse(line: bytes):
        try:
            return json.loads(line)
        except ValueError:
            raise StreamDecodeError("a line is not JSON", line) from None


async def ndjson(chunks: AsyncIterable[bytes]) -> AsyncIterator[object]:
    """Yield each JSON value of a newline-delimited JSON byte stream."""
    decoder = NDJSONDecoder()
    async for chunk in chunks:
        for value in decoder.feed(chunk):
            yield value
    for value in decoder.close():
        yield value
