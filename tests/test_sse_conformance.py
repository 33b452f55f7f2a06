"""SSEDecoder against the WHATWG HTML "event stream interpretation" rules
(https://html.spec.whatwg.org/multipage/server-sent-events.html) and the
web-platform-tests eventsource/format-* cases, restated here as data.

Each case is decoded whole and in 1-byte pieces. ``E(data, event, id, retry)``
is the expected event; ``id`` is the last event ID at dispatch ("" until
set), ``retry`` the reconnection time then in force.

Then property tests: random event lists encoded with random line endings
decode the same however the byte stream is split; likewise raw UTF-8 text
and NDJSON.
"""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipychat.streams import (
    NDJSONDecoder,
    SSEDecoder,
    ServerSentEvent as E,
    StreamDecodeError,
    Utf8Decoder,
)


def decode(chunks):
    decoder = SSEDecoder()
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + decoder.close()


def decode_whole_and_bytewise(stream: bytes):
    whole = decode([stream])
    assert decode([stream[i : i + 1] for i in range(len(stream))]) == whole
    return whole


LONG = "x" * 2048

CASES = {
    # -- byte order mark (format-bom, format-bom-2)
    "bom": ("\ufeffdata:1\n\n\ufeffdata:2\n\ndata:3\n\n", [E("1"), E("3")]),
    "double bom": ("\ufeff\ufeffdata:1\n\ndata:2\n\ndata:3\n\n", [E("2"), E("3")]),
    "bom inside a value": ("data:\ufeffx\n\n", [E("\ufeffx")]),
    # -- comments (format-comments)
    "comment fest": (
        "data:1\r:\0\n:\r\ndata:2\n:" + LONG + "\rdata:3\n:data:fail\r:" + LONG + "\ndata:4\n\n",
        [E("1\n2\n3\n4")],
    ),
    "comment only": (": hello\n\n", []),
    "colon only": (":\n\n", []),
    # -- field parsing
    "data field forms (format-field-data)": (
        "data:\n\ndata\ndata\n\ndata:test\n\n", [E(""), E("\n"), E("test")]),
    "one leading space is removed": (
        "data:a\n\ndata: a\n\ndata:  a\n\ndata:\ta\n\n", [E("a"), E("a"), E(" a"), E("\ta")]),
    "only the first colon splits": ("data: a: b:c\n\n", [E("a: b:c")]),
    "trailing space kept": ("data: a \n\n", [E("a ")]),
    "field names are case-sensitive": ("Data: x\nDATA: y\n\n", []),
    "no trimming of field names": (" data: x\ndata : y\n\tdata: z\n\n", []),
    "unknown fields ignored": (
        "foo: bar\ndata: x\nbaz\nretryy: 5\nidd: 9\n\n", [E("x")]),
    "unknown field alone dispatches nothing": ("foo: bar\n\n", []),
    "nul in a field name": ("da\0ta: x\n\n", []),
    # -- multi-line data and the final LF
    "stock ticker (spec example)": ("data: YHOO\ndata: +2\ndata: 10\n\n", [E("YHOO\n+2\n10")]),
    "empty last data line keeps one LF": ("data:a\ndata:\n\n", [E("a\n")]),
    "two equal events (spec example)": ("data:test\n\ndata: test\n\n", [E("test"), E("test")]),
    # -- dispatch rules
    "empty data buffer: no event (spec example)": (
        "data\n\ndata\ndata\n\ndata:", [E(""), E("\n")]),
    "blank lines alone": ("\n\n\r\n\r\r", []),
    "final event without blank line (format-data-before-final-empty-line)": (
        "retry:1000\ndata:test1\n\nid:test\ndata:test2", [E("test1", retry=1000)]),
    "final event ending in one line end": ("data: a\n\ndata: b\n", [E("a")]),
    "spec example with ids": (
        ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n",
        [E("first event", id="1"), E("second event")]),
    # -- event type (format-field-event, format-field-event-empty)
    "custom event type": ("event:test\ndata:x\n\ndata:x\n\n", [E("x", "test"), E("x")]),
    "empty event type means message": ("event: \ndata:data\n\n", [E("data")]),
    "event type is reset after dispatch": (
        "event: a\ndata: 1\n\ndata: 2\n\n", [E("1", "a"), E("2")]),
    "event type is reset by an empty dispatch": ("event: a\n\ndata: x\n\n", [E("x")]),
    "last event type wins": ("event: a\nevent: b\ndata: x\n\n", [E("x", "b")]),
    "event type kept verbatim": ("event:  Spaced Out \ndata: x\n\n", [E("x", " Spaced Out ")]),
    # -- id (format-field-id*, format-field-id-null)
    "unicode id": ("id: \u2026\nretry: 200\ndata: hello\n\n", [E("hello", id="\u2026", retry=200)]),
    "id persists": ("id: 1\ndata: 1\n\ndata:2\n\n", [E("1", id="1"), E("2", id="1")]),
    "id changes and persists": (
        "id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [E("1", id="1"), E("2", id="2"), E("3", id="2")]),
    "empty id resets": (
        "id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n", [E("1", id="1"), E("2"), E("3")]),
    "id without colon resets": ("id: 1\ndata: 1\n\nid\ndata: 2\n\n", [E("1", id="1"), E("2")]),
    "id with NUL is ignored": (
        "id: 1\ndata: a\n\nid: \0\0\ndata: b\n\nid: x\0y\ndata: c\n\n",
        [E("a", id="1"), E("b", id="1"), E("c", id="1")]),
    "id with NUL from the start": ("id: \0\0\ndata: hello\n\n", [E("hello")]),
    "id set by an event without data": ("id: 5\n\ndata: x\n\n", [E("x", id="5")]),
    "id set in an undispatched event still counts": (
        "id: 5\ndata: x\n\nid: 6\n\ndata: y\n\n", [E("x", id="5"), E("y", id="6")]),
    "id after data in the same event": ("data: x\nid: 3\n\n", [E("x", id="3")]),
    # -- retry (format-field-retry, format-field-retry-bogus)
    "retry is base ten": ("retry:02000\ndata:x\n\n", [E("x", retry=2000)]),
    "bogus retry ignored": ("retry:2000\nretry:1000x\ndata:x\n\n", [E("x", retry=2000)]),
    "retry only ASCII digits": (
        "retry: 7\n" + "".join(f"retry:{v}\n" for v in (
            "", "  8", "8 ", "-8", "+8", "8.0", "1e3", "0x10", "\u0661\u0662", "\u00b2", "\uff18"))
        + "retry\ndata: x\n\n",
        [E("x", retry=7)]),
    "retry persists and updates": (
        "retry: 5\n\ndata: a\n\nretry: 0\ndata: b\n\n", [E("a", retry=5), E("b", retry=0)]),
    "huge retry": ("retry: 99999999999999999999\ndata: x\n\n", [E("x", retry=10**20 - 1)]),
    # -- line ends
    "CR, LF and CRLF": (
        "data:a\rdata:b\r\rdata:c\r\ndata:d\r\n\r\ndata:e\ndata:f\n\n",
        [E("a\nb"), E("c\nd"), E("e\nf")]),
    "LF CR is two line ends": ("data:a\n\rdata:b\n\n", [E("a"), E("b")]),
    "CR CR LF": ("data:a\r\r\n", [E("a")]),
    "stream ends after CR": ("data:a\r\r", [E("a")]),
    "other separators are content": (
        "data:a\u2028b\x85c\x0bd\x0ce\x1cf\n\n", [E("a\u2028b\x85c\x0bd\x0ce\x1cf")]),
    # -- data content (format-null-character, format-utf-8)
    "NUL in data is kept": ("data:\0\n\n", [E("\0")]),
    "UTF-8": ("data:ok\u2026 \u00e9 \U0001f389\n\n", [E("ok\u2026 \u00e9 \U0001f389")]),
}


@pytest.mark.parametrize("stream, expected", CASES.values(), ids=list(CASES))
def test_spec_case(stream, expected):
    assert decode_whole_and_bytewise(stream.encode("utf-8")) == expected


def test_new_decoder_starts_fresh():
    first = SSEDecoder()
    first.feed(b"id: 1\nretry: 9\nevent: a\ndata: x\n")
    assert decode([b"data: y\n\n"]) == [E("y", "message", "", None)]


@pytest.mark.parametrize("stream", [b"data: \xff\n\n", b"data: a\xed\xa0\x80\n\n", b"\xfe\xff\n"])
def test_invalid_utf8_is_an_error_not_replacement(stream):
    # Deliberate difference from browsers, which substitute U+FFFD.
    with pytest.raises(StreamDecodeError):
        decode([stream])


# -- property tests -----------------------------------------------------------

SETTINGS = settings(max_examples=200, deadline=None)
line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                    max_size=12)
line_ends = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def event_blocks(draw):
    """One block: its field lines and the event it should dispatch (or None)."""
    lines = []
    if draw(st.booleans()):
        lines.append(":" + draw(line_text))
    event_type = draw(st.none() | line_text)
    if event_type is not None:
        lines.append(field_line("event", event_type, draw))
    new_id = draw(st.none() | line_text.filter(lambda s: "\0" not in s))
    if new_id is not None:
        lines.append("id: " + new_id)
    retry = draw(st.none() | st.integers(0, 10**6))
    if retry is not None:
        lines.append(f"retry: {retry}")
    data = draw(st.lists(line_text, max_size=3))
    lines += [field_line("data", value, draw) for value in data]
    return lines, event_type, new_id, retry, data


def field_line(name, value, draw):
    # "name: x" loses its one space, so a value that starts with one needs it.
    space = value[:1] == " " or draw(st.booleans())
    return f"{name}: {value}" if space else f"{name}:{value}"


def expected_events(blocks):
    events, last_id, retry = [], "", None
    for _, event_type, new_id, new_retry, data in blocks:
        last_id = last_id if new_id is None else new_id
        retry = retry if new_retry is None else new_retry
        if data:
            events.append(E("\n".join(data), event_type or "message", last_id, retry))
    return events


def encode_lines(lines, draw):
    out = []
    for line in lines:
        end = draw(line_ends)
        if not line and out and out[-1].endswith("\r") and end == "\n":
            end = "\r\n"  # CR + LF would merge into one line end
        out.append(line + end)
    return "".join(out)


def split_at_random(data, draw):
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


@SETTINGS
@given(st.lists(event_blocks(), max_size=6), st.booleans(), st.data())
def test_random_events_any_split(blocks, bom, data):
    lines = [line for block in blocks for line in block[0] + [""]]
    stream = ("\ufeff" if bom else "") + encode_lines(lines, data.draw)
    stream = stream.encode("utf-8")
    expected = expected_events(blocks)
    assert decode([stream]) == expected
    assert decode(split_at_random(stream, data.draw)) == expected


@SETTINGS
@given(st.text(st.characters(blacklist_categories=("Cs",))), st.booleans(), st.data())
def test_random_text_any_split(text, bom, data):
    stream = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    decoder = Utf8Decoder()
    pieces = [decoder.feed(chunk) for chunk in split_at_random(stream, data.draw)]
    # Without our BOM, a leading U+FEFF of the text itself is the one stripped.
    expected = text[1:] if not bom and text[:1] == "\ufeff" else text
    assert "".join(pieces) + decoder.close() == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@SETTINGS
@given(st.lists(json_values, max_size=6), st.booleans(), st.data())
def test_random_ndjson_any_split(values, bom, data):
    lines = []
    for value in values:
        lines += [""] * data.draw(st.integers(0, 2))
        lines.append(json.dumps(value, ensure_ascii=data.draw(st.booleans())))
    text = encode_lines(lines, data.draw)
    if data.draw(st.booleans()) and text:
        text = text.rstrip("\r\n")  # the final line may lack its line end
    stream = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    decoder = NDJSONDecoder()
    decoded = [v for chunk in split_at_random(stream, data.draw) for v in decoder.feed(chunk)]
    assert decoded + decoder.close() == values
