"""Cromicle on the wire: one POST with a hashed prompt, a raw UTF-8 answer
(shared/PROTOCOLS.md). Shared behaviour is in test_provider_base/test_http."""

from __future__ import annotations

from hashlib import sha256

import pytest

from ipychat import errors
from ipychat.providers import Cromicle
from tests.test_provider_base import MESSAGES, WIRES, headers_of, streaming

WIRE = WIRES["cromicle"]
HI_HASH = "716bde7342769020fd6658d369bc5f033e3f43e20ff776cdc3e1f45edb8d0f49"


async def ask(make_server, messages=MESSAGES, pieces=(b"ok",), **kwargs):
    """Ask once; return (answer chunks, the recorded request)."""
    server = WIRE.serve(make_server, streaming(list(pieces), content_type="text/plain"))
    chunks = [t async for t in Cromicle.create_async_generator("gpt-3.5-turbo", messages,
                                                              base_url=server.url, **kwargs)]
    (request,) = server.requests
    return chunks, request


async def test_the_request_is_exactly_the_protocols(make_server):
    chunks, request = await ask(make_server)
    assert chunks == ["ok"]
    assert (request.method, request.path, request.query) == ("POST", "/chat", {})
    headers = headers_of(request)
    assert (headers["accept"], headers["content-type"]) == ("*/*", "application/json")
    assert request.json() == {"message": "hi", "token": "abc", "hash": HI_HASH}


@pytest.mark.parametrize("messages, prompt", [
    ([{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}],
     "System: be nice\nUser: hi\nAssistant:"),
    ([{"role": "user", "content": "grüß dich 😀"}], "grüß dich 😀"),
])
async def test_the_prompt_is_formatted_and_hashed_over_its_utf8(make_server, messages, prompt):
    _, request = await ask(make_server, messages)
    digest = sha256(b"abc" + prompt.encode("utf-8")).hexdigest()
    assert request.json() == {"message": prompt, "token": "abc", "hash": digest}


async def test_model_and_extra_options_are_not_sent(make_server):
    _, request = await ask(make_server, temperature=0.1, top_p=0.5, api_key="sk-123456")
    assert request.json() == {"message": "hi", "token": "abc", "hash": HI_HASH}


TEXT = "añ€😀z"
RAW = TEXT.encode("utf-8")


@pytest.mark.parametrize("cut", range(1, len(RAW)))
async def test_a_character_split_across_pieces_decodes_whole(make_server, cut):
    chunks, _ = await ask(make_server, pieces=[RAW[:cut], RAW[cut:]])
    assert "".join(chunks) == TEXT


async def test_one_byte_per_piece_decodes_whole(make_server):
    chunks, _ = await ask(make_server, pieces=[RAW[i:i + 1] for i in range(len(RAW))])
    assert "".join(chunks) == TEXT and all(chunks)


async def test_a_stream_ending_inside_a_character_is_malformed(make_server):
    with pytest.raises(errors.MalformedStreamError) as caught:
        await ask(make_server, pieces=[b"ok ", "😀".encode()[:2]])
    assert str(caught.value).startswith("Cromicle: malformed stream")


async def test_an_empty_body_is_an_error_not_an_empty_answer(make_server):
    with pytest.raises(errors.StreamCutShort, match="no answer text"):
        await ask(make_server, pieces=[])
