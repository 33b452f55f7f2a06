"""The byte-stream decoders give the same output however the bytes are chunked.

Every input is decoded whole, in 1-byte pieces, split in two at every byte
position, and (for short inputs) split in three at every pair of positions,
with empty chunks mixed in. WHATWG conformance cases are in
test_sse_conformance.py.
"""

import itertools

import pytest

from ipychat.streams import (
    LineSplitter,
    NDJSONDecoder,
    SSEDecoder,
    ServerSentEvent,
    StreamDecodeError,
    Utf8Decoder,
    ndjson,
    sse_events,
    utf8_text,
)

BOM = b"\xef\xbb\xbf"


def splittings(data: bytes):
    """Every way of chunking ``data`` that these tests try."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    yield [b"", data[:1], b"", data[1:], b""]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    if len(data) <= 48:
        for i, j in itertools.combinations(range(len(data) + 1), 2):
            yield [data[:i], data[i:j], data[j:]]


def decode_text(chunks):
    decoder = Utf8Decoder()
    return "".join(decoder.feed(chunk) for chunk in chunks) + decoder.close()


def decode_lines(chunks):
    splitter = LineSplitter()
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    return lines, splitter.close()


def decode_sse(chunks):
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def decode_ndjson(chunks):
    decoder = NDJSONDecoder()
    values = [value for chunk in chunks for value in decoder.feed(chunk)]
    return values + decoder.close()


def assert_same_for_every_split(decode, data, expected):
    for chunks in splittings(data):
        assert decode(chunks) == expected, chunks


def assert_error_for_every_split(decode, data, what):
    for chunks in splittings(data):
        with pytest.raises(StreamDecodeError) as caught:
            decode(chunks)
        assert caught.value.what == what, chunks


# -- Utf8Decoder ----------------------------------------------------------------

TEXT_CASES = [
    (b"plain ascii\r\n", "plain ascii\r\n"),
    ("h\u00e9 \u2603 \U0001d11e \U0001f389!".encode(), "h\u00e9 \u2603 \U0001d11e \U0001f389!"),
    (BOM + "bom \u00e9".encode(), "bom \u00e9"),
    (BOM + BOM + b"x", "\ufeffx"),  # only one BOM is stripped
    (b"x" + BOM, "x\ufeff"),  # a BOM later on is content
    (BOM, ""),
    (b"", ""),
    (b"\xef\xbb", None),  # a cut-off BOM is a cut-off character
]


@pytest.mark.parametrize("data, expected", [c for c in TEXT_CASES if c[1] is not None])
def test_utf8_decoder_any_split(data, expected):
    assert_same_for_every_split(decode_text, data, expected)


@pytest.mark.parametrize("data", [b"a\xff", b"\xff", b"ab\xc3(", b"\xc0\xaf", b"a\xed\xa0\x80b",
                                  b"\xef\xbb\xff", b"\xf4\x90\x80\x80"])
def test_utf8_decoder_invalid_bytes(data):
    assert_error_for_every_split(decode_text, data, "invalid UTF-8")


@pytest.mark.parametrize("data", [b"a\xe2\x82", b"\xf0\x9f\x8e", b"\xef\xbb", b"\xef"])
def test_utf8_decoder_stream_ends_inside_a_character(data):
    assert_error_for_every_split(decode_text, data, "stream ends inside a UTF-8 character")


def test_utf8_decoder_error_names_the_bad_bytes():
    decoder = Utf8Decoder()
    assert decoder.feed(b"ok ") == "ok "
    assert decoder.feed(b"\xe2\x82(rest") == ""  # the error waits for the next call
    with pytest.raises(StreamDecodeError) as caught:
        decoder.check()
    assert caught.value.fragment.startswith(b"\xe2\x82")
    assert isinstance(caught.value, ValueError)


def test_utf8_decoder_holds_back_half_a_character():
    decoder = Utf8Decoder()
    assert decoder.feed(b"a\xe2\x82") == "a"
    assert decoder.feed(b"\xac b") == "\u20ac b"
    assert decoder.close() == ""


# -- LineSplitter ---------------------------------------------------------------

LINE_CASES = [
    (b"a\nb\rc\r\nd", [b"a", b"b", b"c"], b"d"),
    (b"a\r\n\r\nb\n", [b"a", b"", b"b"], None),
    (b"\r\r\n\n", [b"", b"", b""], None),  # CR, CRLF, LF: three empty lines
    (b"\n\r", [b"", b""], None),  # LF then CR is two line ends, not one
    (b"a\r", [b"a"], None),
    (b"a\r\rb", [b"a", b""], b"b"),
    (b"", [], None),
    (b"no end", [], b"no end"),
    # Only CR and LF end lines; other separators are content.
    (b"a\x0bb\x0cc\x1cd\x85e\xe2\x80\xa8f\n", [b"a\x0bb\x0cc\x1cd\x85e\xe2\x80\xa8f"], None),
    (BOM + b"a\nb\n", [b"a", b"b"], None),
    (BOM + BOM + b"a\n", [BOM + b"a"], None),
    (b"a\n" + BOM + b"b\n", [b"a", BOM + b"b"], None),
    (BOM, [], None),
    (b"\xef\xbb", [], b"\xef\xbb"),  # not a whole BOM: given back
    (b"\xefa\n", [b"\xefa"], None),
    ("\u00e9\r\n\u2603".encode(), ["\u00e9".encode()], "\u2603".encode()),
]


@pytest.mark.parametrize("data, lines, tail", LINE_CASES)
def test_line_splitter_any_split(data, lines, tail):
    assert_same_for_every_split(decode_lines, data, (lines, tail))


def test_line_splitter_cr_then_lf_in_the_next_chunk():
    splitter = LineSplitter()
    assert splitter.feed(b"one\r") == [b"one"]  # the line ends at once
    assert splitter.feed(b"") == []
    assert splitter.feed(b"\ntwo\r") == [b"two"]
    assert splitter.feed(b"\r") == [b""]  # CR CR: an empty line, not a CRLF
    assert splitter.feed(b"\n") == []  # ...but this LF completes that CRLF
    assert splitter.close() is None


def test_line_splitter_long_line_in_many_chunks():
    splitter = LineSplitter()
    for _ in range(1000):
        assert splitter.feed(b"xy") == []
    assert splitter.feed(b"z\nrest") == [b"xy" * 1000 + b"z"]
    assert splitter.close() == b"rest"
    assert splitter.close() is None


# -- SSEDecoder -----------------------------------------------------------------

SSE_STREAM = (
    BOM
    + b": a comment\n"
    + b"data: first\r\n\r\n"
    + b"event: update\rid: 7\rretry: 1500\rdata: two\rdata:  lines\r\r"
    + b"data:caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x8e\x89\n:ignored\nunknown: x\n\n"
    + b"id\ndata\n\n"
    + b"data: never dispatched"
)
SSE_EXPECTED = [
    ServerSentEvent("first"),
    ServerSentEvent("two\n lines", "update", "7", 1500),
    ServerSentEvent("caf\u00e9 \u2603 \U0001f389", "message", "7", 1500),
    ServerSentEvent("", "message", "", 1500),
]


def test_sse_decoder_any_split():
    assert_same_for_every_split(decode_sse, SSE_STREAM, SSE_EXPECTED)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"data: a\n\ndata: b\n", [ServerSentEvent("a")]),  # b has no blank line
        (b"data: a\r\n\r\ndata: b\r\n", [ServerSentEvent("a")]),
        (b"data: a\r\r", [ServerSentEvent("a")]),  # CR CR ends line and event
        (b"data: a\n\r", [ServerSentEvent("a")]),
        (b"\xef\xbb\xbfdata: a\n\n", [ServerSentEvent("a")]),
        (b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n", [ServerSentEvent("b")]),
        (b"data: \xef\xbb\xbfa\n\n", [ServerSentEvent("\ufeffa")]),
        (b"data: x\n\ndata: \xff", [ServerSentEvent("x")]),  # the unfinished tail is discarded
    ],
)
def test_sse_decoder_short_streams_any_split(data, expected):
    assert_same_for_every_split(decode_sse, data, expected)


@pytest.mark.parametrize("data", [b"data: \xff\n\n", b"data: a\n\nev\xc3(nt: x\n",
                                  b"data: \xe2\x82\n\n", b"\xef\xbb\n"])
def test_sse_decoder_invalid_utf8(data):
    assert_error_for_every_split(decode_sse, data, "invalid UTF-8 in an event line")


def test_sse_decoder_events_come_out_as_soon_as_dispatched():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent("a")]
    assert decoder.feed(b"data: b\r") == []
    assert decoder.feed(b"\r") == [ServerSentEvent("b")]
    assert decoder.feed(b"\n") == []  # completes nothing: the CR CR already did
    assert decoder.feed(b"data: c\n") == []
    assert decoder.close() == []


def test_sse_decoder_error_fragment_is_the_line():
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed(b"data: ok\n\ndata: b\xffd\nmore")] == ["ok"]
    with pytest.raises(StreamDecodeError) as caught:
        decoder.feed(b"")
    assert caught.value.fragment == b"data: b\xffd"


# -- NDJSONDecoder --------------------------------------------------------------

NDJSON_STREAM = (
    BOM
    + b'{"a": 1, "b": [true, null]}\n'
    + b"\n   \n\t\r\n"
    + b'[1, 2.5, "x"]\r'
    + b'"caf\xc3\xa9 \xf0\x9f\x8e\x89"\r\n'
    + b"  42  \n"
    + b'{"last": "no newline"}'
)
NDJSON_EXPECTED = [{"a": 1, "b": [True, None]}, [1, 2.5, "x"], "caf\u00e9 \U0001f389", 42,
                   {"last": "no newline"}]


def test_ndjson_any_split():
    assert_same_for_every_split(decode_ndjson, NDJSON_STREAM, NDJSON_EXPECTED)


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"1\n2\n", [1, 2]),
        (b"1\r\n\r\n\r\n2", [1, 2]),
        (b"\n\n", []),
        (b"", []),
        (b"  ", []),
        (BOM + b"{}", [{}]),
        (b"null\nfalse", [None, False]),
    ],
)
def test_ndjson_short_streams_any_split(data, expected):
    assert_same_for_every_split(decode_ndjson, data, expected)


@pytest.mark.parametrize(
    "data, what",
    [
        (b'{"a": 1}\n{"a": \n', "a line is not JSON"),
        (b"1\nnot json\n2\n", "a line is not JSON"),
        (b"1\n{", "a line is not JSON"),  # a broken final line, found at close
        (b"1\n" + BOM + b"2\n", "a line is not JSON"),  # a BOM is only allowed first
        (b"1\x00\x00\x00\n", "a line is not JSON"),  # no UTF-32 guessing
        (b'"\xff"\n', "invalid UTF-8 in a line"),
        (b'"\xc3"', "invalid UTF-8 in a line"),
    ],
)
def test_ndjson_invalid_line(data, what):
    assert_error_for_every_split(decode_ndjson, data, what)


def test_ndjson_error_fragment_is_the_line():
    decoder = NDJSONDecoder()
    assert decoder.feed(b"1\n") == [1]
    assert decoder.feed(b"{oops}\r\n") == []
    with pytest.raises(StreamDecodeError) as caught:
        decoder.close()
    assert caught.value.fragment == b"{oops}"


# -- async wrappers -------------------------------------------------------------


async def agen(chunks):
    for chunk in chunks:
        yield chunk


async def collect(aiterable):
    return [item async for item in aiterable]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
async def test_async_wrappers(size):
    def pieces(data):
        return agen([data[i : i + size] for i in range(0, len(data), size)])

    text = await collect(utf8_text(pieces(BOM + "\u00e9\u2603\U0001f389 end".encode())))
    assert "".join(text) == "\u00e9\u2603\U0001f389 end"
    assert "" not in text
    assert await collect(sse_events(pieces(SSE_STREAM))) == SSE_EXPECTED
    assert await collect(ndjson(pieces(NDJSON_STREAM))) == NDJSON_EXPECTED


async def test_async_wrappers_yield_nothing_for_empty_streams():
    assert await collect(utf8_text(agen([b"", b""]))) == []
    assert await collect(sse_events(agen([]))) == []
    assert await collect(ndjson(agen([b"\n"]))) == []


async def test_async_wrappers_raise_decode_errors():
    with pytest.raises(StreamDecodeError):
        await collect(utf8_text(agen([b"ok", b"\xe2"])))
    with pytest.raises(StreamDecodeError):
        await collect(sse_events(agen([b"data: \xff\n"])))
    with pytest.raises(StreamDecodeError):
        await collect(ndjson(agen([b"1\n", b"]"])))


async def test_utf8_text_yields_each_piece_as_it_arrives():
    stream = utf8_text(agen([b"ab", b"\xe2\x82", b"\xac", b"c"]))
    assert [text async for text in stream] == ["ab", "\u20ac", "c"]


# -- what was decoded before a bad byte is handed out first ----------------------------


def test_utf8_text_before_a_bad_byte_in_the_same_chunk_comes_first():
    decoder = Utf8Decoder()
    assert decoder.feed(b"caf\xc3") == "caf"
    assert decoder.feed(b"\xa9 ok \xff more") == "é ok "
    with pytest.raises(StreamDecodeError, match="invalid UTF-8"):
        decoder.feed(b"next")
    with pytest.raises(StreamDecodeError):
        decoder.close()


def test_sse_events_before_a_bad_line_in_the_same_chunk_come_first():
    decoder = SSEDecoder()
    events = decoder.feed(b"data: one\n\ndata: two\n\ndata: \xff\n\ndata: three\n\n")
    assert [e.data for e in events] == ["one", "two"]
    with pytest.raises(StreamDecodeError, match="invalid UTF-8"):
        decoder.close()


def test_ndjson_values_before_a_bad_line_in_the_same_chunk_come_first():
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n[2]\nnot json\n{"b": 3}\n') == [{"a": 1}, [2]]
    with pytest.raises(StreamDecodeError, match="not JSON"):
        decoder.feed(b"")


async def test_async_wrappers_yield_the_good_part_then_raise():
    async def one(chunk):
        yield chunk

    seen = []
    with pytest.raises(StreamDecodeError):
        async for text in utf8_text(one(b"good \xff")):
            seen.append(text)
    assert seen == ["good "]
    seen = []
    with pytest.raises(StreamDecodeError):
        async for value in ndjson(one(b"1\n2\n{\n")):
            seen.append(value)
    assert seen == [1, 2]
    seen = []
    with pytest.raises(StreamDecodeError):
        async for event in sse_events(one(b"data: a\n\ndata: \xfe\n\n")):
            seen.append(event.data)
    assert seen == ["a"]
