"""OpenAssistant on the wire: five steps over one cookie session, the chat
deleted however the answer ends (shared/PROTOCOLS.md)."""

from __future__ import annotations

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers import OpenAssistant
from ipychat.providers.openassistant import SAMPLING_DEFAULTS
from ipychat.providers.vitalentum import CHROME_UA
from tests.test_provider_base import (
    MESSAGES, OA_COOKIES, OA_STEPS, data_line, headers_of, json_reply, oa_token, split_cases,
    streaming,
)

COOKIE_HEADER = "__Secure-next-auth.session-token=cookie-value-42"
ANSWER = [oa_token("Hel"), oa_token("lo")]
STEPS = [("POST", "/api/chat"), ("POST", "/api/chat/prompter_message"),
         ("POST", "/api/chat/assistant_message"), ("POST", "/api/chat/events"),
         ("DELETE", "/api/chat")]


STEP_NAMES = ["create", "prompter", "assistant", "delete"]  # the routes of OA_STEPS


def oa_server(make_server, events=None, **replace):
    """Steps 1-3 and DELETE as in OA_STEPS, ``events`` answers step 4;
    ``replace`` maps a name of STEP_NAMES to another handler."""
    routes = [(method, path, replace.get(name, handler))
              for name, (method, path, handler) in zip(STEP_NAMES, OA_STEPS)]
    return make_server([("POST", "/api/chat/events", events or streaming(ANSWER)), *routes])


async def html_page(request, rec):
    return web.Response(text="<html>", content_type="text/html")


async def ask(server, model="", messages=MESSAGES, **kwargs):
    """(chunks received, error or None)."""
    chunks = []
    kwargs = {"cookies": OA_COOKIES, **kwargs}
    try:
        async for text in OpenAssistant.create_async_generator(model, messages,
                                                               base_url=server.url, **kwargs):
            chunks.append(text)
    except errors.ChatError as err:
        return chunks, err
    return chunks, None


def steps(server) -> list:
    return [(r.method, r.path) for r in server.requests]


def assistant_body(model="OA_SFT_Llama_30B_6", **sampling):
    return {"chat_id": "chat-1", "parent_id": "parent-1", "model_config_name": model,
            "sampling_parameters": {**SAMPLING_DEFAULTS, **sampling}, "plugins": []}


async def test_five_steps_in_order_with_exact_requests(make_server):
    server = oa_server(make_server)
    chunks, err = await ask(server)
    assert err is None and chunks == ["Hel", "lo"]
    assert steps(server) == STEPS
    create, prompter, assistant, events, delete = server.requests
    assert create.body == b"" and events.body == b""
    assert prompter.json() == {"chat_id": "chat-1", "content": "<s>[INST]\nhi\n[/INST]",
                               "parent_id": None}
    assert assistant.json() == assistant_body()
    assert events.query == {"chat_id": "chat-1", "message_id": "msg-1"}
    assert delete.query == {"chat_id": "chat-1"} and delete.body == b""
    for request in server.requests:
        assert headers_of(request)["User-Agent"] == CHROME_UA
        assert headers_of(request)["Cookie"] == COOKIE_HEADER


def test_sampling_defaults_are_the_protocols():
    assert SAMPLING_DEFAULTS == {"top_k": 50, "top_p": None, "typical_p": None,
                                 "temperature": 0.35, "repetition_penalty": 1.1111111111111112,
                                 "max_new_tokens": 1024}


async def test_a_history_is_formatted_into_the_prompt(make_server):
    server = oa_server(make_server)
    await ask(server, messages=[{"role": "system", "content": "be nice"}, *MESSAGES])
    content = server.requests[1].json()["content"]
    assert content == "<s>[INST]\nSystem: be nice\nUser: hi\nAssistant:\n[/INST]"


async def test_caller_model_and_options_override_the_defaults(make_server):
    server = oa_server(make_server)
    await ask(server, model="llama-2", temperature=0.9, max_new_tokens=10, top_p=0.5,
              stream=True, timeout=9, api_key="sk-123456", proxy=None)
    assert server.requests[2].json() == assistant_body("llama-2", temperature=0.9,
                                                       max_new_tokens=10, top_p=0.5)


async def test_cookies_the_server_sets_are_kept_for_later_steps(make_server):
    async def create(request, rec):
        response = web.json_response({"id": "chat-1"})
        response.set_cookie("csrf", "token-7")
        return response

    server = oa_server(make_server, create=create)
    await ask(server)
    later = headers_of(server.requests[3])["Cookie"]
    assert sorted(later.split("; ")) == sorted([COOKIE_HEADER, "csrf=token-7"])


async def test_ids_with_odd_characters_are_quoted(make_server):
    server = oa_server(make_server, create=json_reply({"id": "a&b c+d=é"}),
                       assistant=json_reply({"id": 7}))
    _, err = await ask(server)
    assert err is None
    assert server.requests[3].query == {"chat_id": "a&b c+d=é", "message_id": "7"}
    assert server.requests[4].query == {"chat_id": "a&b c+d=é"}


@pytest.mark.parametrize("cookies", [None, {}])
async def test_missing_cookies_say_how_to_pass_them_and_send_nothing(make_server, cookies):
    server = oa_server(make_server)
    chunks, err = await ask(server, cookies=cookies)
    assert isinstance(err, errors.AuthenticationRequired) and err.status is None
    assert str(err).startswith("OpenAssistant: ") and "cookies=" in str(err)
    assert "\n" not in str(err) and server.requests == []


# -- the chat is deleted however the answer ends --------------------------------

ERROR_EVENT = b'data: {"event_type": "error", "error": "model overloaded"}\n\n'
FAILURES = {
    "error_event": ({"events": streaming([oa_token("Hel"), ERROR_EVENT])},
                    errors.ProviderError, "model overloaded"),
    "step_2_http_error": ({"prompter": json_reply({"error": "no"}, status=500)},
                          errors.HTTPStatusError, "HTTP 500: no"),
    "step_3_http_error": ({"assistant": json_reply({"error": "busy"}, status=503)},
                          errors.HTTPStatusError, "HTTP 503: busy"),
    "step_3_message": ({"assistant": json_reply({"message": "model busy"})},
                       errors.ProviderError, "model busy"),
    "step_3_without_id": ({"assistant": json_reply({"other": 1})},
                          errors.MalformedStreamError, "without 'id'"),
    "step_3_not_json": ({"assistant": html_page},
                        errors.MalformedStreamError, "assistant_message"),
    "step_4_http_error": ({"events": json_reply({"error": "gone"}, status=502)},
                          errors.HTTPStatusError, "HTTP 502: gone"),
    "step_4_malformed": ({"events": streaming([b"data: {oops\n\n"])},
                         errors.MalformedStreamError, "oops"),
}


@pytest.mark.parametrize("replace, error, text", FAILURES.values(), ids=list(FAILURES))
async def test_the_chat_is_deleted_after_a_failure(make_server, replace, error, text):
    server = oa_server(make_server, **replace)
    _, err = await ask(server)
    assert type(err) is error and text in str(err)
    assert str(err).startswith("OpenAssistant: ")
    assert steps(server)[-1] == ("DELETE", "/api/chat")
    assert server.requests[-1].query == {"chat_id": "chat-1"}


@pytest.mark.parametrize("status, error", [(401, errors.AuthenticationRequired),
                                           (500, errors.HTTPStatusError)])
async def test_a_failed_step_1_leaves_no_chat_to_delete(make_server, status, error):
    server = oa_server(make_server, create=json_reply({"error": "who?"}, status=status))
    _, err = await ask(server, max_retries=0)
    assert type(err) is error and err.status == status
    assert steps(server) == [("POST", "/api/chat")]


async def test_a_failed_delete_does_not_spoil_the_answer(make_server):
    server = oa_server(make_server, delete=json_reply({"error": "no"}, status=500))
    chunks, err = await ask(server)
    assert err is None and chunks == ["Hel", "lo"]
    assert steps(server) == STEPS


# -- the event stream ---------------------------------------------------------------

EVENTS = b"".join([
    b'data: {"event_type": "pending", "queue_position": 0}\n\n',
    oa_token("Hé"), b": comment\n", oa_token("llo 😀"),
    data_line({"event_type": "message", "message": {"content": "Héllo 😀"}}),
])


def tight(reply: bytes) -> bytes:
    """The same events without blank lines between them."""
    return reply.replace(b"\n\n", b"\n")


CASES = {**{f"blank_lines_{k}": v for k, v in split_cases(EVENTS).items()},
         # WHATWG: an event not ended by a blank line when the stream closes is dropped.
         "unended_last_event": [EVENTS + oa_token("!").rstrip(b"\n")]}


@pytest.mark.parametrize("case, pieces", CASES.items())
async def test_events_split_anywhere_decode_the_same(make_server, case, pieces):
    server = oa_server(make_server, events=streaming(pieces))
    chunks, err = await ask(server)
    assert err is None
    assert "".join(chunks) == "Héllo 😀"


async def test_events_are_sse_not_lines(make_server):
    # text/event-stream: data lines without a blank line between them are one
    # event whose data joins them, which is not JSON (a line splitter read them).
    server = oa_server(make_server, events=streaming([tight(EVENTS) + b"\n"]))
    _, err = await ask(server)
    assert isinstance(err, errors.MalformedStreamError)
