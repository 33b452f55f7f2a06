"""%%chat through a real ipykernel: live updates, history, interrupts, errors.

The servers run in this process on 127.0.0.1; the kernel reaches them over
the loopback like any notebook would.
"""

import asyncio
import json

import pytest
from aiohttp import web
from ipychat.render import SEGMENT_CHARS

from tests.support.kernel import loaded_kernel

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def kernel():
    # Outputs are compared whole; the stats line (times vary) is in test_reasoning_kernel.py.
    with loaded_kernel("%config ChatMagics.stats = False") as k:
        yield k


@pytest.fixture(autouse=True)
def fresh_history(kernel):
    kernel.run("%chat reset")


def paced(pieces, pause=0.01, hold=None):
    """A raw-text handler writing ``pieces`` with a pause between them."""

    async def handler(request, rec):
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for piece in pieces:
            await response.write(piece.encode())
            await asyncio.sleep(pause)
        if hold is not None:
            await hold.wait()
        await response.write_eof()
        return response

    return handler


def sse_answer(words):
    async def handler(request, rec):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in words:
            chunk = {"choices": [{"delta": {"content": word}}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    return handler


def one_line_error(execution):
    (error,) = execution.errors
    assert len(error["content"]["traceback"]) == 1, error["content"]["traceback"]
    return error["content"]["traceback"][0]


def test_updates_arrive_while_the_answer_streams(kernel, make_server):
    words = [f"w{i} " for i in range(40)]
    server = make_server([("POST", "/chat", paced(words, pause=0.01))])
    run = kernel.run(f"%%chat -p cromicle --base-url {server.url} -o ans\nhi")
    assert run.reply["content"]["status"] == "ok"
    assert len(run.of_type("display_data")) == 1
    assert len(run.updates) >= 3  # live, not one update at the end
    assert run.last_text() == "".join(words)
    assert run.last_text("text/markdown") == "".join(words)
    assert kernel.value("ans") == repr("".join(words))


def test_long_answer_gives_bounded_updates_and_exact_text(kernel, make_server):
    words = [f"{i} " for i in range(10_000)]

    async def handler(request, rec):
        return await _fast_stream(request, words)

    server = make_server([("POST", "/chat", handler)])
    run = kernel.run(f"%%chat -p cromicle --base-url {server.url} --format text\nhi")
    assert run.reply["content"]["status"] == "ok"
    assert len(run.updates) <= 60
    assert run.last_text() == "".join(words)
    assert "text/markdown" not in run.updates[-1]["content"]["data"]


def test_a_huge_answer_goes_on_in_new_outputs_each_update_bounded(kernel, make_server):
    paragraph = "A paragraph of a very long answer, with a <b> tag to escape.\n\n"
    words = [paragraph] * 40_000  # 2.5 M characters

    async def handler(request, rec):
        return await _fast_stream(request, words, batch=1000)

    server = make_server([("POST", "/chat", handler)])
    run = kernel.run(f"%%chat -p cromicle --base-url {server.url} -o big --no-history\nhi",
                     timeout=120)
    assert run.reply["content"]["status"] == "ok"
    outputs = run.outputs("text/markdown")
    assert len(outputs) == 3
    assert "".join(outputs) == "".join(words).replace("<b>", "&lt;b>")
    biggest = max(len(m["content"]["data"]["text/markdown"])
                  for m in run.of_type("display_data", "update_display_data"))
    assert biggest <= SEGMENT_CHARS * 1.1  # never the whole answer again
    assert kernel.value("len(big)") == repr(len("".join(words)))


async def _fast_stream(request, words, batch=50):
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    for start in range(0, len(words), batch):
        await response.write("".join(words[start:start + batch]).encode())
        await asyncio.sleep(0)
    await response.write_eof()
    return response


def test_history_reaches_vitalentum_as_speakers(kernel, make_server):
    server = make_server([("POST", "/api/converse-edge", sse_answer(["Hi", " there"]))])
    base = f"-p vitalentum --base-url {server.url}"
    assert kernel.run(f"%%chat {base} -s 'be brief'\nfirst").reply["content"]["status"] == "ok"
    assert kernel.run(f"%%chat {base}\nsecond").reply["content"]["status"] == "ok"
    history = json.loads(server.requests[1].json()["conversation"])["history"]
    assert history == [
        {"speaker": "bot", "text": "be brief"},
        {"speaker": "human", "text": "first"},
        {"speaker": "bot", "text": "Hi there"},
        {"speaker": "human", "text": "second"},
    ]


def test_history_reaches_lockchat_as_messages_and_no_history_is_one_off(kernel, make_server):
    server = make_server([("POST", "/v1/chat/completions", sse_answer(["A", "B"]))])
    base = f"-p lockchat --base-url {server.url}"
    kernel.run(f"%%chat {base}\none")
    kernel.run(f"%%chat {base} --no-history\naside")
    kernel.run(f"%%chat {base} -t 0.2\ntwo")
    assert server.requests[1].json()["messages"] == [{"role": "user", "content": "aside"}]
    body = server.requests[2].json()
    assert body["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "AB"},
        {"role": "user", "content": "two"},
    ]
    assert body["temperature"] == 0.2


def test_interpolation_uses_the_user_namespace_once(kernel, make_server):
    server = make_server([("POST", "/chat", paced(["ok"]))])
    kernel.run("topic = 'lists {topic}'")
    kernel.run(f"%%chat -p cromicle --base-url {server.url} --no-history\n"
               "Explain {topic}, keep {{braces}} and {unknown}")
    assert server.requests[0].json()["message"] == "Explain lists {topic}, keep {braces} and {unknown}"


def test_interrupt_cancels_the_request_and_keeps_the_text(kernel, make_server):
    hold = asyncio.Event()
    server = make_server([("POST", "/chat", paced(["partial ", "answer "], hold=hold))])

    interrupted = []

    def interrupt_on_text(msg):
        # Once: the final "(interrupted)" update also holds the text, and a second
        # SIGINT could land on the next cell.
        text = msg["content"].get("data", {}).get("text/plain", "")
        if msg["msg_type"] == "update_display_data" and "answer" in text and not interrupted:
            interrupted.append(True)
            kernel.interrupt()

    run = kernel.run(f"%%chat -p cromicle --base-url {server.url} -o part\nhi",
                     on_message=interrupt_on_text)
    assert server.wait_for(lambda: server.requests[0].disconnected, timeout=10)
    assert "interrupted" in one_line_error(run)
    assert run.last_text().startswith("partial answer ")
    assert "(interrupted)" in run.last_text()
    assert kernel.value("part") == repr("partial answer ")
    assert kernel.value("1 + 1") == "2"  # the kernel stays usable
    history = kernel.run("%chat history")
    assert "No history yet." in history.last_text()


@pytest.mark.parametrize("cell, expected", [
    ("%%chat -p nosuch\nhi", "unknown provider 'nosuch'"),
    ("%%chat -p cromicle\n   ", "the cell is empty"),
    ("%%chat -t hot\nhi", "temperature must be a number from 0 to 2"),
    ("%%chat --format html\nhi", "--format must be one of"),
    ("%%chat --bogus\nhi", "unrecognized arguments"),
    ("%%chat -p openassistant --base-url http://127.0.0.1:9\nhi", "cookies"),
    ("%%chat -p cromicle --base-url http://127.0.0.1:9\nhi", "cannot connect"),
    ("%chat frobnicate", "unknown %chat subcommand"),
])
def test_each_error_is_one_line(kernel, cell, expected):
    run = kernel.run(cell)
    line = one_line_error(run)
    assert expected in line
    assert "Traceback" not in line


def test_http_error_shows_server_text_in_one_line(kernel, make_server):
    async def broken(request, rec):
        return web.json_response({"error": {"message": "upstream exploded"}}, status=502)

    server = make_server([("POST", "/chat", broken)])
    line = one_line_error(kernel.run(f"%%chat -p cromicle --base-url {server.url}\nhi"))
    assert "HTTP 502" in line and "upstream exploded" in line


def test_background_keeps_streaming_after_the_cell_returns(kernel, make_server):
    hold = asyncio.Event()
    server = make_server([("POST", "/chat", paced(["early "], hold=hold))])
    run = kernel.run(f"%%chat -p cromicle --base-url {server.url} --background -o bg\nhi")
    assert run.reply["content"]["status"] == "ok"
    (shown,) = run.of_type("display_data")
    display_id = shown["content"]["transient"]["display_id"]
    server.wait_for(lambda: server.requests and True, timeout=10)
    server.call_soon(hold.set)
    updates = kernel.listen(lambda m: m["msg_type"] == "update_display_data"
                            and m["content"]["data"]["text/plain"] == "early ", timeout=20)
    assert updates[-1]["content"]["transient"]["display_id"] == display_id
    assert server.wait_for(lambda: server.requests[0].finished, timeout=10)
    done = kernel.run("import asyncio\nfrom ipychat.runner import background_tasks\n"
                      "await asyncio.wait_for(asyncio.gather(*background_tasks()), 10)")
    assert done.reply["content"]["status"] == "ok"
    assert kernel.value("bg") == repr("early ")
