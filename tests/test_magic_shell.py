"""%%chat in an in-process IPython shell (the terminal path: no kernel, so the
answer streams to stdout through the private loop thread)."""

import asyncio
import subprocess
import sys

import pytest
from aiohttp import web
from IPython.testing.globalipapp import start_ipython

from ipychat import errors
from ipychat.render import TerminalView
from ipychat.runner import AwaitChatCells
from ipychat.targets import EMULATOR_NOTE
from tests.support.matrix import client_sockets, until


@pytest.fixture(scope="module")
def shell():
    ip = start_ipython()
    ip.run_line_magic("load_ext", "ipychat")
    yield ip


@pytest.fixture
def magics(shell, monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "IPYCHAT_PROVIDER", "IPYCHAT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    magics = shell.magics_manager.registry["ChatMagics"]
    magics.conversation.reset()
    magics.defaults = type(magics.defaults)()
    magics.demo, magics.default_provider, magics.default_model = True, "", ""
    return magics


def cromicle_server(make_server, text="Hi!"):
    async def answer(request, rec):
        return web.Response(text=text)

    return make_server([("POST", "/chat", answer)])


def test_load_twice_registers_one_hook(shell):
    shell.run_line_magic("load_ext", "ipychat")
    shell.run_line_magic("reload_ext", "ipychat")
    hooks = [h for h in shell.input_transformers_post if isinstance(h, AwaitChatCells)]
    assert len(hooks) == 1 and "chat" in shell.magics_manager.magics["cell"]


def test_no_await_added_outside_a_kernel(shell):
    code = shell.transform_cell("%%chat -p x\nhi\n")
    assert code.startswith("get_ipython().run_cell_magic('chat'")


def test_terminal_streams_to_stdout_and_records(shell, magics, make_server, capsys):
    server = cromicle_server(make_server)
    result = shell.run_cell(f"%%chat -p cromicle --base-url {server.url} -o said\nhi")
    assert result.success
    out = capsys.readouterr().out
    assert out.startswith("Hi!\n") and "[Cromicle · first text " in out  # then the stats line
    assert shell.user_ns["said"] == "Hi!"
    assert magics.conversation.turns[-1].text == "Hi!"


def test_config_traitlets_apply(shell, magics, make_server):
    server = cromicle_server(make_server)
    shell.run_line_magic("config", "ChatMagics.default_provider = 'cromicle'")
    shell.run_line_magic("config", "ChatMagics.max_history = 0")
    try:
        assert shell.run_cell(f"%%chat --base-url {server.url}\none").success
        assert shell.run_cell(f"%%chat --base-url {server.url}\ntwo").success
        assert server.requests[1].json()["message"] == "two"  # no history sent
    finally:
        shell.run_line_magic("config", "ChatMagics.default_provider = ''")
        shell.run_line_magic("config", "ChatMagics.max_history = 50")


def test_use_sets_defaults_for_following_cells(shell, magics, make_server, capsys):
    server = cromicle_server(make_server)
    shell.run_line_magic("chat", f"use cromicle --base-url {server.url} -t 0.5")
    assert "provider=cromicle" in capsys.readouterr().out
    assert shell.run_cell("%%chat\nhello").success
    assert server.requests[0].json()["message"] == "hello"
    with pytest.raises(errors.ChatError):
        shell.run_line_magic("chat", "use nosuch")


def test_zero_config_answers_from_the_emulator_with_a_note(shell, magics, capsys):
    assert shell.run_cell("%%chat\nhello there").success
    out = capsys.readouterr().out
    assert out.startswith(EMULATOR_NOTE)
    assert "hello there" in out


def test_demo_routes_classic_providers_and_off_does_not(shell, magics, capsys):
    assert shell.run_cell("%%chat -p openassistant\nhi").success
    assert "openassistant" in capsys.readouterr().out
    shell.run_line_magic("chat", "demo off")
    with pytest.raises(errors.ChatError, match="no provider configured"):
        magics._prepare(type(magics.defaults)(), "hi")
    shell.run_line_magic("chat", "demo on")


def test_subcommands(shell, magics, capsys):
    shell.run_line_magic("chat", "providers")
    table = capsys.readouterr().out
    for name in ("cromicle", "openassistant", "vitalentum", "lockchat", "openai", "ollama"):
        assert name in table
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "emulator" in rows["openai"]  # no OPENAI_API_KEY: openai answers from the emulator
    assert "emulator" in rows["vitalentum"] and "localhost:11434" in rows["ollama"]
    shell.run_line_magic("chat", "history")
    assert "No history yet." in capsys.readouterr().out
    shell.run_line_magic("chat", "reset")
    shell.run_line_magic("chat", "")
    assert "subcommands" in capsys.readouterr().out
    with pytest.raises(errors.UsageError):
        shell.run_line_magic("chat", "demo maybe")


def test_loading_does_not_import_aiohttp_or_ipywidgets():
    code = ("import sys\nfrom IPython.testing.globalipapp import start_ipython\n"
            "ip = start_ipython()\nip.run_line_magic('load_ext', 'ipychat')\n"
            "print(sorted(m for m in ('aiohttp', 'ipywidgets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr


def test_api_key_env_sends_the_named_key_to_a_custom_server(shell, magics, make_server,
                                                             monkeypatch):
    async def answer(request, rec):
        body = b'data: {"choices":[{"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n'
        return web.Response(body=body, content_type="text/event-stream")

    server = make_server([("POST", "/v1/chat/completions", answer)])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real-openai-key-0000")
    monkeypatch.setenv("LOCAL_KEY", "local-key-1111")
    base = f"%%chat -p openai --base-url {server.url}/v1 --no-history"
    assert shell.run_cell(f"{base}\nplain").success
    assert shell.run_cell(f"{base} --api-key-env LOCAL_KEY\nnamed").success
    first, second = server.requests
    assert "Authorization" not in first.headers  # OPENAI_API_KEY stays with api.openai.com
    assert second.headers["Authorization"] == "Bearer local-key-1111"
    assert "api_key_env" not in second.json()


def test_help_shows_usage_and_every_option(shell):
    doc = shell._object_find("%%chat").obj.__doc__
    assert "Chat with a language model" in doc  # argparse puts the usage line first
    for option in ("--provider", "--model", "--temperature", "--system", "--base-url", "--proxy",
                   "--timeout", "--api-key-env", "--out", "--no-history", "--format",
                   "--background", "%chat providers"):
        assert option in doc


def test_watchers_of_the_conversation_hear_a_cell_answer(shell, magics, make_server):
    server = cromicle_server(make_server, text="Heard!")
    heard = []
    unwatch = magics.conversation.watch(
        lambda change, answer: heard.append((change, answer and (answer.prompt, answer.text))))
    try:
        assert shell.run_cell(f"%%chat -p cromicle --base-url {server.url}\nhi").success
        assert shell.run_cell(f"%%chat -p cromicle --base-url {server.url} --no-history\n"
                              "one-off").success
    finally:
        unwatch()
    assert heard[0] == ("started", ("hi", ""))
    assert heard[-1] == ("ended", ("hi", "Heard!"))
    assert {change for change, _ in heard[1:-1]} <= {"grew"}
    assert all(seen[1] != "one-off" for _, seen in heard)  # not part of the conversation


def test_format_code_prefills_the_next_terminal_prompt(shell, magics, make_server, capsys):
    server = cromicle_server(make_server)  # answers "Hi!" (no fence: the whole answer is code)
    result = shell.run_cell(f"%%chat -p cromicle --base-url {server.url} --format code\nhi")
    assert result.success
    assert shell.rl_next_input == "Hi!"


def test_unload_removes_err_and_load_brings_it_back(shell, magics):
    shell.run_cell("1 / 0", store_history=True)  # a numbered cell, as in a notebook
    assert "ZeroDivisionError" in shell.user_ns["Err"][max(shell.user_ns["Err"])]
    shell.run_line_magic("unload_ext", "ipychat")
    assert "Err" not in shell.user_ns
    shell.run_line_magic("load_ext", "ipychat")
    assert "Err" in shell.user_ns


def test_unload_ext_closes_kept_connections(shell, magics, make_server):
    """The blocking path runs on ``loopthread``'s loop, which lives on: its idle
    connection must go with the extension (tests/test_connections.py: the rest)."""
    server = cromicle_server(make_server)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        assert shell.run_cell(f"%%chat -p cromicle --base-url {server.url} --no-history\nhi"
                              ).success
        assert client_sockets(port) == 1  # kept for the next cell
        shell.run_line_magic("unload_ext", "ipychat")
        assert asyncio.run(until(lambda: client_sockets(port) == 0, 10))
    finally:
        shell.run_line_magic("load_ext", "ipychat")


def test_terminal_answers_are_logged_and_replayed(shell, magics, make_server, capsys,
                                                  tmp_path, monkeypatch):
    monkeypatch.setenv("IPYCHAT_HOME", str(tmp_path))  # the recorder's log follows it
    server = cromicle_server(make_server, text="Logged!")
    cell = f"%%chat -p cromicle --base-url {server.url} --no-history -o said\nhi"
    assert shell.run_cell(cell).success
    from ipychat.log import Log

    (entry,) = Log(tmp_path / "log.db").entries()
    assert (entry.answer.text, entry.answer.status) == ("Logged!", "complete")
    shell.run_line_magic("chat", "replay on")
    capsys.readouterr()
    try:
        assert shell.run_cell(cell.replace("-o said", "-o again")).success
    finally:
        shell.run_line_magic("chat", "replay off")
    out = capsys.readouterr().out
    assert out.startswith("*Replayed from the log (") and "\nLogged!\n" in out
    assert len(server.requests) == 1 and shell.user_ns["again"] == "Logged!"
    (tmp_path / "log.db").write_bytes(b"not a database" * 100)
    for extra in tmp_path.glob("log.db-*"):
        extra.unlink()
    assert shell.run_cell(cell).success
    assert f"(not logged: file is not a database ({tmp_path / 'log.db'}))" in \
        capsys.readouterr().out


# -- tools in the terminal --------------------------------------------------------

@pytest.fixture
def emulator():
    from ipychat.emulator import EmulatorServer

    with EmulatorServer(delay=0) as server:
        yield server


def test_tools_run_in_the_terminal_and_print_their_lines(shell, magics, emulator, capsys):
    shell.run_cell("seen = []\n"
                   "def get_weather(city: str) -> dict:\n"
                   "    \"Weather for a city.\"\n"
                   "    seen.append(city)\n"
                   "    return {'temp': 21}\n"
                   "async def get_time(zone: str):\n"
                   "    raise ValueError('no clock')")
    ask = "Weather? [[emulator call=get_weather,get_time args='[{\"city\": \"Paris\"}, " \
          "{\"zone\": \"CET\"}]']]"
    cell = f"%%chat -p openai --base-url {emulator.url}/v1 --tools get_weather,get_time --no-stats"
    assert shell.run_cell(f"{cell}\n{ask}").success
    out = capsys.readouterr().out
    assert shell.user_ns["seen"] == ["Paris"]
    dim, reset = TerminalView.DIM, TerminalView.RESET
    assert out.startswith(f'\n{dim}[tool] get_weather(city="Paris"){reset}{dim} → {{"temp": 21}}'
                          f'{reset}\n\n{dim}[tool] get_time(zone="CET"){reset}{dim} ✗ '
                          f"ValueError: no clock{reset}\n\n**Emulator answer (openai)**")
    assert "> get_weather: {\"temp\": 21}\n> get_time: Error: ValueError: no clock\n" in out
    (turn,) = magics.conversation.turns
    assert [run.name for run in turn.tool_calls] == ["get_weather", "get_time"]
    shell.run_line_magic("chat", "history")
    history = capsys.readouterr().out
    assert 'tool: get_weather(city="Paris") → {"temp": 21}\n' in history
    assert "tool: get_time(zone=\"CET\") ✗ ValueError: no clock\nassistant (OpenAIChat): " \
           "**Emulator answer (openai)**" in history


@pytest.mark.parametrize("cell, words", [
    ("%%chat --tools nosuch\nhi", "no function 'nosuch' in the notebook"),
    ("%%chat -p cromicle --tools double\nhi", "cromicle cannot call tools"),
    ("%%chat -p openai,vitalentum --tools double\nhi", "vitalentum cannot call tools"),
    ("%%chat -p openai --tools maker\nhi", "cannot read the signature of tool maker"),
    ("%%chat -p openai --tools spread\nhi", "tool spread takes \\*values"),
])
def test_tools_that_cannot_be_offered_fail_before_sending(shell, magics, cell, words):
    shell.run_cell("def double(x: int):\n    return 2 * x\n"
                   "def spread(*values):\n    pass\nmaker = dict")
    with pytest.raises(errors.UsageError, match=words):
        magics._prepare(parse_cell(magics, cell), cell.split("\n", 1)[1])


def parse_cell(magics, cell):
    from ipychat.options import parse

    return parse(magics.chat, cell.split("\n")[0][len("%%chat"):])


def test_use_keeps_tools_and_no_tools_drops_them(shell, magics, capsys):
    shell.run_cell("def f(x: int):\n    return x")
    shell.run_line_magic("chat", "use --tools f --quiet-tools")
    assert "tools=f" in capsys.readouterr().out and magics.defaults.tools == "f"
    with pytest.raises(errors.UsageError, match="no function 'g'"):
        shell.run_line_magic("chat", "use --tools g")
    shell.run_line_magic("chat", "use --no-tools")
    assert magics.defaults.tools is None and not magics.defaults.no_tools
