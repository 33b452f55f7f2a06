"""Ollama's native /api/chat against recording servers on 127.0.0.1."""

import json
import socket

import pytest
from aiohttp import web

from ipychat import errors
from ipychat.providers import Ollama, get_provider
from tests.support.calls import answer_of, failure_of
from tests.support.server import stream_pieces

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "grüß dich"}]


def line(content: str, done: bool = False, newline: bytes = b"\n") -> bytes:
    value = {"model": "llama3.2", "created_at": "2024-01-01T00:00:00Z",
             "message": {"role": "assistant", "content": content}, "done": done}
    return json.dumps(value, ensure_ascii=False).encode() + newline


DONE = json.dumps({"model": "llama3.2", "done": True, "done_reason": "stop",
                   "eval_count": 3}).encode() + b"\n"
ANSWER = line("Grüß ") + line("👋", newline=b"\r\n") + b"\n" + line("!") + DONE


def split(data: bytes, size: int):
    return [data[i:i + size] for i in range(0, len(data), size)]


def ndjson_route(pieces, status=200):
    async def handler(request, rec):
        return await stream_pieces(request, pieces, content_type="application/x-ndjson",
                                   status=status)
    return [("POST", "/api/chat", handler)]


async def answer(base_url, **kwargs):
    return await answer_of(Ollama, base_url, MESSAGES, **kwargs)


async def failure(base_url, **kwargs) -> errors.ChatError:
    return await failure_of(Ollama, base_url, MESSAGES, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_exact_request_and_answer(make_server):
    server = make_server(ndjson_route([ANSWER]))
    text = await answer(server.url, temperature=0.1, num_ctx=4096, keep_alive="5m",
                        proxy=None, timeout=5, cookies=None)
    assert text == "Grüß 👋!"
    [rec] = server.requests
    assert (rec.method, rec.path) == ("POST", "/api/chat")
    assert "Authorization" not in rec.headers
    assert rec.json() == {"model": "llama3.2", "messages": MESSAGES, "stream": True,
                          "options": {"temperature": 0.1, "num_ctx": 4096},
                          "keep_alive": "5m"}


async def test_no_options_still_sends_an_empty_options_object(make_server):
    server = make_server(ndjson_route([ANSWER]))
    await answer(server.url, model="qwen3:4b")
    assert server.requests[0].json() == {"model": "qwen3:4b", "messages": MESSAGES,
                                         "stream": True, "options": {}}


@pytest.mark.parametrize("size", [1, 3, 7, 64])
async def test_stream_split_anywhere(make_server, size):
    server = make_server(ndjson_route(split(ANSWER, size)))
    assert await answer(server.url) == "Grüß 👋!"


async def test_text_after_done_is_not_read(make_server):
    server = make_server(ndjson_route([line("a"), DONE, line("never")]))
    assert await answer(server.url) == "a"


async def test_error_line(make_server):
    error = json.dumps({"error": "model runner has unexpectedly stopped"}).encode() + b"\n"
    server = make_server(ndjson_route([line("par"), error]))
    err = await failure(server.url)
    assert type(err) is errors.ProviderError
    assert "model runner has unexpectedly stopped" in str(err)


async def test_stream_without_done_is_cut_short(make_server):
    server = make_server(ndjson_route([line("half")]))
    assert isinstance(await failure(server.url), errors.StreamCutShort)


async def test_line_that_is_not_json(make_server):
    server = make_server(ndjson_route([line("a"), b"<html>oops\n"]))
    assert isinstance(await failure(server.url), errors.MalformedStreamError)


async def test_unknown_model_404(make_server):
    async def handler(request, rec):
        return web.json_response({"error": "model 'nope' not found"}, status=404)
    server = make_server([("POST", "/api/chat", handler)])
    err = await failure(server.url, model="nope")
    assert isinstance(err, errors.ModelNotFound) and err.model == "nope"


async def test_server_error_500(make_server):
    async def handler(request, rec):
        return web.json_response({"error": "out of memory"}, status=500)
    server = make_server([("POST", "/api/chat", handler)])
    err = await failure(server.url)
    assert type(err) is errors.HTTPStatusError and err.status == 500
    assert "out of memory" in str(err)


async def test_connection_refused_says_ollama_is_not_running():
    base = f"http://127.0.0.1:{free_port()}"
    err = await failure(base)
    assert isinstance(err, errors.ConnectionFailed)
    assert f"Ollama does not seem to run at {base}" in str(err)
    assert "ollama serve" in str(err)


def test_registered_and_defaults():
    assert get_provider("ollama") is Ollama
    assert (Ollama.default_base_url, Ollama.model, Ollama.needs_auth) == (
        "http://localhost:11434", "llama3.2", False)


async def test_against_the_emulator():
    emulator = pytest.importorskip("ipychat.emulator")
    from ipychat.emulator.reply import reply_text

    with emulator.EmulatorServer(delay=0) as emu:
        text = await answer(emu.url + "/ollama", temperature=0)
    assert text == reply_text("ollama", MESSAGES, "llama3.2")


def tags_route(body, status=200):
    async def handler(request, rec):
        return web.json_response(body, status=status)
    return [("GET", "/api/tags", handler)]


async def test_list_models_reads_the_pulled_models(make_server):
    server = make_server(tags_route({"models": [{"name": "qwen3:0.6b", "size": 1},
                                                {"name": "llama3.2:latest"}, {"size": 2}]}))
    assert await Ollama.list_models(server.url) == ["llama3.2:latest", "qwen3:0.6b"]
    [rec] = server.requests
    assert (rec.method, rec.path) == ("GET", "/api/tags")


async def test_list_models_failures_are_one_line_errors(make_server):
    bad = make_server(tags_route({"nothing": []}))
    with pytest.raises(errors.MalformedStreamError, match="no 'models' list"):
        await Ollama.list_models(bad.url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(errors.ConnectionFailed, match=f"127.0.0.1:{port}"):
        await Ollama.list_models(f"http://127.0.0.1:{port}", timeout=5)


async def test_list_models_from_the_emulator():
    from ipychat.emulator import EmulatorServer, base_url_for
    from ipychat.emulator.ollama import MODELS

    with EmulatorServer(delay=0) as emu:
        assert await Ollama.list_models(base_url_for("ollama", emu.url)) == sorted(MODELS)
