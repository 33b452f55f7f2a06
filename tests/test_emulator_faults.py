"""Every fault, on the wire of every protocol (raw aiohttp reads), and what
ipychat's classic providers make of it."""

from __future__ import annotations

import json

import aiohttp
import pytest

from ipychat.emulator import DEMO_COOKIES
from ipychat.emulator.faults import Faults, parse_directives
from ipychat.emulator.reply import UTF8_SAMPLE, answer_pieces, answer_text, reply_text
from ipychat.errors import (AuthenticationRequired, ChatTimeout, HTTPStatusError,
                            MalformedStreamError, ModelNotFound, ProviderError, RateLimited,
                            StreamCutShort)
from ipychat.providers import Cromicle, Lockchat, OpenAssistant, Vitalentum
from tests.test_emulator_kit import (HAS_END, MODELS, PROTOCOLS, emu, fetch, has_end,  # noqa: F401
                                     post, send, server, texts, user)

ALL = pytest.mark.parametrize("protocol", PROTOCOLS)
FAULT_500 = "emulator fault: HTTP 500 Internal Server Error"


def expected(protocol: str, text: str) -> list:
    """The pieces the emulator should stream for ``text`` (its directive included)."""
    faults = Faults(**parse_directives(text))
    return answer_pieces(protocol, user(text), MODELS.get(protocol), faults)


def joined(protocol, raw) -> str:
    return "".join(texts(protocol, raw))


def frames(protocol, raw) -> list:
    """The body split into its frames (lines for Ollama, events otherwise)."""
    separator = b"\n" if protocol == "ollama" else b"\n\n"
    return [f for f in raw.body.split(separator) if f.strip()]


def parses(frame: bytes) -> bool:
    data = frame.split(b"data: ", 1)[-1]
    try:
        json.loads(data)
    except ValueError:
        return data == b"[DONE]"
    return True


@ALL
async def test_chunks_gives_exactly_n_filler_chunks(emu, protocol):
    raw = await send(protocol, emu.url, "hi [[emulator chunks=3]]")
    if protocol == "cromicle":
        assert raw.chunks == [b"tok "] * 3  # one HTTP chunk per write
    else:
        assert texts(protocol, raw) == ["tok "] * 3 and has_end(protocol, raw)
    assert emu.requests[-1].faults == {"chunks": 3}


ERROR_BODIES = {
    "cromicle": lambda m, s: m,
    "openassistant": lambda m, s: {"message": m, "errorCode": s},
    "vitalentum": lambda m, s: {"error": m},
    "lockchat": lambda m, s: {"error": {"message": m, "type": "rate_limit_error",
                                        "param": None, "code": None}},
    "ollama": lambda m, s: {"error": m},
    "anthropic": lambda m, s: {"type": "error", "error": {"type": "rate_limit_error",
                                                          "message": m}},
}
ERROR_BODIES["openai"] = ERROR_BODIES["lockchat"]


@ALL
async def test_status_answers_the_protocols_error_shape(emu, protocol):
    raw = await send(protocol, emu.url, "hi [[emulator status=429]]")
    message = "emulator fault: HTTP 429 Too Many Requests"
    assert (raw.status, raw.headers["Retry-After"]) == (429, "1")
    body = raw.body.decode() if protocol == "cromicle" else raw.json()
    assert body == ERROR_BODIES[protocol](message, 429)


@ALL
async def test_status_with_a_plain_body(emu, protocol):
    raw = await send(protocol, emu.url, 'hi [[emulator status=502 body="upstream down"]]')
    assert (raw.status, raw.body) == (502, b"upstream down")
    assert raw.headers["Content-Type"].startswith("text/plain")


ERROR_EVENTS = {
    "openassistant": (None, {"event_type": "error", "error": FAULT_500}),
    "vitalentum": (None, {"error": {"message": FAULT_500, "type": "server_error",
                                    "param": None, "code": None}}),
    "anthropic": ("error", {"type": "error", "error": {"type": "api_error",
                                                       "message": FAULT_500}}),
}
ERROR_EVENTS["lockchat"] = ERROR_EVENTS["openai"] = ERROR_EVENTS["vitalentum"]


@ALL
async def test_error_event_after_k_chunks(emu, protocol):
    text = "hi [[emulator error_event after=2]]"
    raw = await send(protocol, emu.url, text)
    assert joined(protocol, raw) == "".join(expected(protocol, text)[:2])
    if protocol == "cromicle":  # no in-band errors in raw text: the connection drops
        assert isinstance(raw.error, aiohttp.ClientPayloadError)
    elif protocol == "ollama":
        assert raw.lines()[-1] == {"error": FAULT_500} and raw.error is None
    else:
        event, data = raw.sse()[-1]
        assert (event, json.loads(data)) == ERROR_EVENTS[protocol]
        assert raw.error is None


@ALL
async def test_drop_cuts_the_connection_after_k_chunks(emu, protocol):
    text = "hi [[emulator drop after=2]]"
    raw = await send(protocol, emu.url, text)
    assert isinstance(raw.error, aiohttp.ClientPayloadError)
    assert joined(protocol, raw) == "".join(expected(protocol, text)[:2])
    # Once a later request is answered, the dropped handler has surely ended.
    assert (await fetch("GET", emu.url + "/_emulator/health")).status == 200
    record = emu.requests[-1]
    assert record.dropped and not record.finished and not record.disconnected


@ALL
async def test_malformed_sends_one_broken_frame(emu, protocol):
    raw = await send(protocol, emu.url, "hi [[emulator malformed]]")
    if protocol == "cromicle":
        assert raw.body.count(b"\xff\xfe") == 1
        return
    assert [parses(f) for f in frames(protocol, raw)].count(False) == 1
    assert has_end(protocol, raw)  # the stream goes on after the broken frame


@ALL
async def test_split_utf8_cuts_inside_characters(emu, protocol):
    text = "hi [[emulator split_utf8]]"
    raw = await send(protocol, emu.url, text)
    undecodable = 0
    for chunk in raw.chunks:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
    assert undecodable >= 8  # 2 é + 2 😀 in the sample, each cut into two chunks
    assert joined(protocol, raw) == "".join(expected(protocol, text))
    assert joined(protocol, raw).endswith(UTF8_SAMPLE)


@ALL
async def test_invalid_utf8_sends_bad_bytes_inside_the_text(emu, protocol):
    raw = await send(protocol, emu.url, "hi [[emulator invalid_utf8]]")
    assert raw.body.count(b"\xff\xfe") == 1
    if protocol != "cromicle":
        bad = [f for f in frames(protocol, raw) if b"\xff\xfe" in f]
        assert b"data:" in bad[0] or protocol == "ollama"


@ALL
async def test_big_line_is_one_frame_of_n_bytes(emu, protocol):
    text = "hi [[emulator big_line=100000]]"
    raw = await send(protocol, emu.url, text)
    assert joined(protocol, raw) == "".join(expected(protocol, text))
    if protocol != "cromicle":
        assert texts(protocol, raw)[1] == "x" * 100000


@ALL
async def test_empty_is_200_without_a_body(emu, protocol):
    raw = await send(protocol, emu.url, "hi [[emulator empty]]")
    assert (raw.status, raw.body, raw.error) == (200, b"", None)


@ALL
async def test_no_end_leaves_out_the_end_marker(emu, protocol):
    text = "hi [[emulator no_end]]"
    raw = await send(protocol, emu.url, text)
    assert joined(protocol, raw) == "".join(expected(protocol, text))
    if HAS_END[protocol]:
        assert not has_end(protocol, raw)
        assert has_end(protocol, await send(protocol, emu.url, "hi"))


@ALL
async def test_unknown_event_is_extra(emu, protocol):
    text = "hi [[emulator unknown_event]]"
    raw = await send(protocol, emu.url, text)
    assert joined(protocol, raw) == "".join(expected(protocol, text))
    marker = b"emulator.unknown" if protocol in ("openai", "lockchat", "vitalentum") \
        else b"emulator_unknown"
    extra = [f for f in frames(protocol, raw) if marker in f]
    assert len(extra) == (0 if protocol == "cromicle" else 1)


async def test_bad_directive_is_rejected(emu):
    raw = await send("openai", emu.url, "hi [[emulator status=99x]]")
    assert raw.status == 400 and "bad emulator directive" in raw.json()["error"]["message"]
    raw = await send("ollama", emu.url, "hi [[emulator explode]]")
    assert raw.status == 400 and "unknown fault 'explode'" in raw.json()["error"]


# -- what ipychat's classic providers make of each fault -----------------------

CLASSIC = {"cromicle": Cromicle, "openassistant": OpenAssistant, "vitalentum": Vitalentum,
           "lockchat": Lockchat}
RAISES = [
    ("error_event", {"cromicle": StreamCutShort, "*": ProviderError}),
    ("drop after=3", {"*": StreamCutShort}),
    ("malformed", {"*": MalformedStreamError}),
    ("invalid_utf8", {"*": MalformedStreamError}),
    ("empty", {"*": StreamCutShort}),
    ("no_end", {"vitalentum": StreamCutShort, "lockchat": StreamCutShort}),
    ("status=401", {"*": AuthenticationRequired}),
    ("status=429", {"*": RateLimited}),
    ("status=503", {"*": HTTPStatusError}),
    ("unknown_event", {}),
    ("split_utf8", {}),
    ("big_line=70000", {}),
    ("chunks=5 delay=0.001", {}),
]


async def ask(name, url, text, **kwargs):
    cookies = {"cookies": DEMO_COOKIES} if name == "openassistant" else {}
    # One attempt: these tests map each fault; retries have their own tests.
    return await CLASSIC[name].create_async(None, user(text), base_url=url, max_retries=0,
                                            **cookies, **kwargs)


@pytest.mark.parametrize("name", list(CLASSIC))
@pytest.mark.parametrize("directive, raises", RAISES, ids=[r[0] for r in RAISES])
async def test_classic_providers_under_faults(emu, name, directive, raises):
    text = f"hi [[emulator {directive}]]"
    failure = raises.get(name, raises.get("*"))
    if failure is None:
        answer = await ask(name, emu.url, text)
        faults = Faults(**parse_directives(text))
        want = "" if faults.empty else answer_text(name, user(text), MODELS.get(name), faults)
        assert answer == want
    else:
        with pytest.raises(failure):
            await ask(name, emu.url, text)
    if name == "openassistant":  # the chat is deleted however the answer ended
        assert emu.wait_for(lambda: emu.deleted_chats == ["chat-1"])


@pytest.mark.parametrize("name", list(CLASSIC))
@pytest.mark.parametrize("stall", ["stall_first=30", "stall_mid=30"])
async def test_a_stall_times_out_and_the_client_leaves(emu, name, stall):
    with pytest.raises(ChatTimeout):
        await ask(name, emu.url, f"hi [[emulator {stall}]]", timeout=0.3)
    answering = [r for r in emu.requests if r.faults]
    assert emu.wait_for(lambda: answering[0].disconnected)


async def test_lockchat_retries_once_on_model_missing(emu):
    text = "hi [[emulator model_missing=1]]"
    assert await ask("lockchat", emu.url, text) == reply_text("lockchat", user(text),
                                                              "gpt-3.5-turbo")
    assert [r.faults.get("quirk", False) for r in emu.requests] == [True, False]
    first = send("lockchat", emu.url, "x [[emulator model_missing=1]]")
    assert "The model: `gpt-3.5-turbo` does not exist" in (await first).body.decode()


async def test_lockchat_gives_up_when_model_missing_twice(emu):
    with pytest.raises(ModelNotFound, match="gpt-4"):
        await Lockchat.create_async("gpt-4", user("hi [[emulator model_missing=2]]"),
                                    base_url=emu.url)
    assert len(emu.requests) == 2


async def test_queued_model_missing_counts_its_own_requests(emu):
    await post(emu.url + "/_emulator/faults", {"model_missing": 1})
    assert await ask("lockchat", emu.url, "hi") == reply_text("lockchat", user("hi"),
                                                              "gpt-3.5-turbo")
    await post(emu.url + "/_emulator/faults", {"model_missing": 2})
    with pytest.raises(ModelNotFound):
        await ask("lockchat", emu.url, "hi")


async def test_queued_faults_merge_with_a_directive(emu):
    await post(emu.url + "/_emulator/faults", {"chunks": 2, "unknown_event": True})
    raw = await send("openai", emu.url, "hi [[emulator chunks=4]]")
    assert texts("openai", raw) == ["tok "] * 4 and b"emulator.unknown" in raw.body
    assert emu.requests[-1].faults == {"chunks": 4, "unknown_event": True}
    assert (await fetch("GET", emu.url + "/_emulator/faults")).json() == {"queued": []}
