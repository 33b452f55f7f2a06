"""ipychat against a real model server: llama-cpp-python's OpenAI-compatible
server running SmolLM2-135M-Instruct on 127.0.0.1 (tests/support/llama.py).

The model is tiny and greedy at temperature 0, so answers are short, fast and
reproducible. What the server puts on the wire (llama-cpp-python 0.3.36):
text chunks, then a chunk with an empty delta and ``finish_reason``
("stop" or "length"), then ``data: [DONE]``. It accepts ``stream_options``
but sends no usage chunk; the tests check usage where it is reported and
that ipychat invents none where it is not.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest

from tests.support.kernel import loaded_kernel
from tests.support.llama import llama_server  # noqa: F401  (the session fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HELLO = [{"role": "user", "content": "Say hello."}]
LONG_STORY = "Write a very long story about a dragon and a knight, with many chapters."
TICKS = os.sysconf("SC_CLK_TCK")


async def events_of(server, messages, **options):
    from ipychat.providers import OpenAIChat

    found = []
    async for event in OpenAIChat.stream_events(server.model, messages,
                                                base_url=server.base_url,
                                                temperature=0, **options):
        found.append(event)
    return found


def kinds(events, kind):
    return [e for e in events if e.kind == kind]


def joined(events):
    return "".join(e.text for e in kinds(events, "text"))


@pytest.fixture(scope="module")
def server_streams_usage(llama_server):  # noqa: F811
    """Whether this server sends a usage chunk when asked (raw SSE, not ipychat)."""
    body = {"model": llama_server.model, "messages": HELLO, "stream": True,
            "max_tokens": 3, "temperature": 0, "stream_options": {"include_usage": True}}
    request = urllib.request.Request(llama_server.base_url + "/chat/completions",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=60) as response:
        raw = response.read().decode()
    chunks = [json.loads(line[len("data: "):]) for line in raw.splitlines()
              if line.startswith("data: {")]
    assert chunks, raw
    return any(chunk.get("usage") for chunk in chunks)


# --- the Python API ----------------------------------------------------------

async def test_stream_events_streams_text_then_finish(llama_server, server_streams_usage):  # noqa: F811
    events = await events_of(llama_server, HELLO, max_tokens=24)
    texts = kinds(events, "text")
    assert len(texts) > 1, events  # it streams: one event per network read, several reads
    assert joined(events).strip()
    (finish,) = kinds(events, "finish")
    assert finish.reason in ("stop", "length"), finish
    assert events.index(finish) > events.index(texts[-1])
    assert not kinds(events, "reasoning")  # SmolLM2 does not think aloud
    usages = kinds(events, "usage")
    if server_streams_usage:
        assert len(usages) == 1, events
        assert isinstance(usages[0].input_tokens, int) and usages[0].input_tokens > 0
        assert isinstance(usages[0].output_tokens, int) and 0 < usages[0].output_tokens <= 24
    else:
        # Nothing reported, nothing invented: a usage event may only say "unknown".
        assert all(u.input_tokens is None and u.output_tokens is None for u in usages), usages


async def test_a_previous_turn_is_sent_and_answered(llama_server):  # noqa: F811
    question = {"role": "user", "content": "What is my name?"}
    earlier = [{"role": "user", "content": "My name is Ada."},
               {"role": "assistant", "content": "Nice to meet you, Ada."}]
    with_history = await events_of(llama_server, earlier + [question], max_tokens=24)
    alone = await events_of(llama_server, [question], max_tokens=24)
    assert joined(with_history).strip()
    assert len(kinds(with_history, "finish")) == 1
    # Greedy decoding: the same last question gives another answer only
    # because the earlier turns reached the model.
    assert joined(with_history) != joined(alone)


async def test_max_tokens_stops_at_the_limit(llama_server, server_streams_usage):  # noqa: F811
    events = await events_of(llama_server, HELLO, max_tokens=5)
    (finish,) = kinds(events, "finish")
    assert finish.reason == "length"
    assert finish.raw == "length"
    assert joined(events).strip()
    assert 1 <= len(kinds(events, "text")) <= 5  # llama.cpp sends one token per chunk
    usages = [u for u in kinds(events, "usage") if u.output_tokens is not None]
    if server_streams_usage:
        assert usages and usages[-1].output_tokens == 5, events
    else:
        assert not usages, events


async def test_same_text_as_the_openai_sdk(llama_server):  # noqa: F811
    import openai

    messages = [{"role": "user", "content": "Name three colours of the rainbow."}]
    llama_server.reset_prompt_cache()  # both requests start from the same cache
    ours = await events_of(llama_server, messages, max_tokens=40, seed=7)

    client = openai.AsyncOpenAI(base_url=llama_server.base_url, api_key="x", max_retries=0,
                                timeout=60)
    try:
        llama_server.reset_prompt_cache()
        stream = await client.chat.completions.create(
            model=llama_server.model, messages=messages, stream=True, max_tokens=40,
            temperature=0, seed=7)
        pieces, reasons = [], []
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                if choice.finish_reason:
                    reasons.append(choice.finish_reason)
    finally:
        await client.close()

    assert len(pieces) > 1
    assert joined(ours) == "".join(pieces)
    assert [f.raw for f in kinds(ours, "finish")] == reasons


async def test_create_async_generator_yields_the_text_only(llama_server):  # noqa: F811
    from ipychat.providers import OpenAIChat

    pieces = []
    llama_server.reset_prompt_cache()  # both requests start from the same cache
    async for piece in OpenAIChat.create_async_generator(
            llama_server.model, HELLO, base_url=llama_server.base_url, temperature=0,
            max_tokens=12):
        pieces.append(piece)
    assert pieces and all(isinstance(p, str) for p in pieces), pieces
    llama_server.reset_prompt_cache()
    events = await events_of(llama_server, HELLO, max_tokens=12)
    assert "".join(pieces) == joined(events)


# --- %%chat in a real kernel -------------------------------------------------

@pytest.fixture(scope="module")
def kernel(llama_server):  # noqa: F811
    with loaded_kernel() as k:
        yield k


def chat_cell(server, options, prompt):
    return (f"%%chat -p openai --base-url {server.base_url} -m {server.model} -t 0 "
            f"--no-history {options}\n{prompt}")


def errors_of(execution):
    return [f'{e["content"]["ename"]}: {e["content"]["evalue"]}' for e in execution.errors]


def shown(execution, mime="text/markdown"):
    return [m["content"]["data"].get(mime, "")
            for m in execution.of_type("display_data", "update_display_data")]


@pytest.mark.kernel
def test_chat_cell_streams_live(kernel, llama_server):  # noqa: F811
    run = kernel.run(chat_cell(llama_server, "--max-tokens 40",
                               "Name three colours of the rainbow."))
    assert run.reply["content"]["status"] == "ok" and not run.errors, errors_of(run)
    assert len(run.of_type("display_data")) == 1
    # Several different states of one output with text in it, before the cell
    # ended: it streamed (a placeholder such as "…" does not count).
    texts = [t for t in shown(run) if any(c.isalnum() for c in t)]
    assert len(set(texts)) >= 3, texts
    assert len(texts[0]) < len(texts[-1])


@pytest.mark.kernel
def test_chat_cell_marks_the_token_limit(kernel, llama_server):  # noqa: F811
    run = kernel.run(chat_cell(llama_server, "--max-tokens 5", "Say hello."))
    assert run.reply["content"]["status"] == "ok" and not run.errors, errors_of(run)
    assert len(run.of_type("display_data", "update_display_data")) > 1
    final = run.last_text("text/markdown")

    result = kernel.run(
        "import ipychat, json\n"
        "r = ipychat.last_result()\n"
        "print(json.dumps({'text': r.text, 'finish_reason': r.finish_reason,\n"
        "                  'usage': r.usage, 'first_token_s': r.first_token_s,\n"
        "                  'duration_s': r.duration_s, 'provider': r.provider,\n"
        "                  'model': r.model}))")
    assert not result.errors, errors_of(result)
    r = json.loads(result.stdout)
    assert r["finish_reason"] == "length"
    answer = r["text"].strip()
    assert answer and answer in final, (answer, final)
    # The mark follows the answer (a line of timings may come after it).
    assert "token limit" not in answer
    assert final.rfind("token limit") > final.rfind(answer), final
    assert set(r["usage"]) == {"input_tokens", "output_tokens"}
    assert all(v is None or isinstance(v, int) for v in r["usage"].values()), r["usage"]
    if r["usage"]["output_tokens"] is not None:
        assert r["usage"]["output_tokens"] == 5
    assert 0 <= r["first_token_s"] <= r["duration_s"]
    assert "openai" in r["provider"].lower()
    assert r["model"] == llama_server.model


def cpu_load(server, seconds=1.5) -> float:
    """The server's CPU use over a window, in cores (1.0: one core busy)."""
    before, start = server.cpu_ticks(), time.monotonic()
    time.sleep(seconds)  # the measurement window itself, not synchronisation
    return (server.cpu_ticks() - before) / TICKS / (time.monotonic() - start)


@pytest.mark.kernel
def test_interrupt_stops_the_generation_on_the_server(kernel, llama_server):  # noqa: F811
    busy = []

    def on_message(msg):
        # At the first text: measure the server while it generates, then interrupt (once).
        if msg["msg_type"] in ("display_data", "update_display_data") and not busy:
            if any(c.isalnum() for c in msg["content"]["data"].get("text/plain", "")):
                busy.append(cpu_load(llama_server))
                kernel.interrupt()

    started = time.monotonic()
    run = kernel.run(chat_cell(llama_server, "--max-tokens 2000", LONG_STORY),
                     timeout=60, on_message=on_message)
    ended = time.monotonic() - started
    assert busy, "no text arrived before the cell ended"
    assert [e["content"]["ename"] for e in run.errors] == ["Interrupted"], errors_of(run)
    assert "(interrupted)" in run.last_text()
    # 2000 tokens take this model about 30 s on one thread: the cell ended early.
    assert ended < 20, ended

    # Idle within a few windows (the disconnect is seen at the next token); a
    # server that kept generating would stay near one core for ~30 s more.
    idle, deadline = [], time.monotonic() + 8
    while True:
        idle.append(cpu_load(llama_server))
        if idle[-1] < 0.15 or time.monotonic() > deadline:
            break
    assert busy[0] > 0.3, f"the server did not look busy while generating: {busy[0]:.2f} cores"
    assert idle[-1] < 0.15, (
        f"the server kept working after the interrupt: {idle} cores "
        f"(busy while generating: {busy[0]:.2f}); log:\n{llama_server.log_tail(1500)}")
    assert kernel.value("1 + 1") == "2"  # the kernel is usable again
