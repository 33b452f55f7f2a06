"""Images in each provider's own form, byte for byte against recording
servers; providers that cannot see refuse before anything is sent."""

import json

import pytest

from ipychat import errors
from ipychat.providers import Anthropic, Cromicle, Lockchat, Ollama, OpenAIChat, stream_events
from tests.support.calls import events_of
from tests.test_provider_base import streaming

DATA = "iVBORw0KGgo="  # the base64 of a PNG's first bytes is enough for the wire form
QUESTION = [{"type": "text", "text": "What is this? "},
            {"type": "image", "media_type": "image/png", "data": DATA},
            {"type": "text", "text": " Be brief."}]
MESSAGES = [{"role": "system", "content": "be kind"},
            {"role": "user", "content": "before [figure: PNG, 2 KB]"},
            {"role": "assistant", "content": "a plot"},
            {"role": "user", "content": QUESTION}]
KEY = "sk-images-Very-Secret-0123456789"
OPENAI_DONE = b'data: {"choices": [{"delta": {"content": "ok"}, "finish_reason": "stop"}]}\n\n' \
              b"data: [DONE]\n\n"


async def test_openai_sends_image_url_parts_with_a_data_url(make_server):
    server = make_server([("POST", "/v1/chat/completions", streaming([OPENAI_DONE]))])
    await events_of(OpenAIChat, server.url + "/v1", MESSAGES)
    assert json.loads(server.requests[0].body)["messages"] == [
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "before [figure: PNG, 2 KB]"},
        {"role": "assistant", "content": "a plot"},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this? "},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{DATA}"}},
            {"type": "text", "text": " Be brief."}]}]


async def test_anthropic_sends_base64_image_blocks(make_server):
    stop = b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    server = make_server([("POST", "/v1/messages", streaming([stop]))])
    await events_of(Anthropic, server.url, MESSAGES, api_key=KEY)
    body = json.loads(server.requests[0].body)
    assert body["system"] == "be kind"
    assert body["messages"][-1] == {"role": "user", "content": [
        {"type": "text", "text": "What is this? "},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": DATA}},
        {"type": "text", "text": " Be brief."}]}
    assert body["messages"][0] == {"role": "user", "content": "before [figure: PNG, 2 KB]"}


async def test_ollama_sends_text_and_an_images_list(make_server):
    done = b'{"message": {"content": "ok"}, "done": true}\n'
    server = make_server([("POST", "/api/chat", streaming([done]))])
    await events_of(Ollama, server.url, MESSAGES)
    assert json.loads(server.requests[0].body)["messages"][-1] == {
        "role": "user", "content": "What is this?  Be brief.", "images": [DATA]}


@pytest.mark.parametrize("cls", [Cromicle, Lockchat])
async def test_providers_that_cannot_see_refuse_before_sending(make_server, cls):
    server = make_server([("POST", "/chat", streaming([b"x"]))])
    _, err = await events_of(cls, server.url, MESSAGES)
    assert isinstance(err, errors.UsageError) and "cannot see images" in str(err)
    assert server.requests == []


async def test_a_foreign_class_must_say_it_can_see():
    class Blind:
        @classmethod
        async def create_async_generator(cls, model, messages, **kwargs):
            yield "never"

    class Seeing(Blind):
        takes_images = True

        @classmethod
        async def create_async_generator(cls, model, messages, **kwargs):
            yield f"{len(messages[-1]['content'])} parts"

    with pytest.raises(errors.UsageError, match="does not say it can see images"):
        [e async for e in stream_events(Blind, None, MESSAGES)]
    assert [e.text async for e in stream_events(Seeing, None, MESSAGES)] == ["3 parts"]
