"""A notebook run with a real-looking key in the environment, including a call
that fails with the key echoed back by the server: afterwards the key appears
nowhere in the saved .ipynb (outputs, errors, widget state, reprs)."""

import json
import sys

import nbformat
import pytest
from aiohttp import web

from tests.test_notebooks import execute_notebook, offline_env

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(180)]

FAKE_KEY = "sk-proj-FAKEfakeFAKE0123456789abcdefXYZ"


def echoing_server(make_server):
    async def completions(request, rec):
        auth = request.headers.get("Authorization", "")
        if "please fail" in rec.body.decode():
            # Some servers quote the key they rejected: it must not reach the notebook.
            return web.json_response(
                {"error": {"message": f"Incorrect API key provided: {auth}"}}, status=401)
        body = b'data: {"choices":[{"delta":{"content":"fine"}}]}\n\ndata: [DONE]\n\n'
        return web.Response(body=body, content_type="text/event-stream")

    return make_server([("POST", "/v1/chat/completions", completions)])


def notebook(url: str):
    chat = f"%%chat -p openai --base-url {url}/v1 --api-key-env OPENAI_API_KEY"
    cells = [
        "%load_ext ipychat",
        "%chat providers",
        f"{chat} -o answer\nhello",
        f"{chat}\nplease fail",
        "%chat history",
        "from ipychat import ChatPanel\nChatPanel(provider='openai')",
        "from ipychat.providers.openai import OpenAIChat\n"
        f"OpenAIChat.make_call(None, [{{'role': 'user', 'content': 'x'}}], base_url='{url}/v1',"
        " api_key_env='OPENAI_API_KEY')",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.cells[3].metadata["tags"] = ["raises-exception"]  # the failing call, on purpose
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_the_key_never_reaches_the_saved_notebook(make_server, tmp_path):
    server = echoing_server(make_server)
    path = tmp_path / "keys.ipynb"
    nbformat.write(notebook(server.url), str(path))
    env = {**offline_env(), "OPENAI_API_KEY": FAKE_KEY}
    ran = execute_notebook(path, sys.executable, tmp_path / "kernels", env)
    nbformat.write(ran, str(path))
    saved = path.read_text()

    # The key was really in play: sent to the server, and quoted back in its error.
    assert [r.headers["Authorization"] for r in server.requests] == [f"Bearer {FAKE_KEY}"] * 2
    failing = ran.cells[3].outputs
    assert any(o.output_type == "error" and "Incorrect API key provided" in o.evalue
               for o in failing), failing
    assert "fine" in json.dumps(ran.cells[2].outputs)
    assert "application/vnd.jupyter.widget-view+json" in json.dumps(ran.cells[5].outputs)
    assert "widgets" in ran.metadata  # the panel's widget state is saved too
    # ... and nowhere in the file, nor any tail of it long enough to matter.
    assert FAKE_KEY not in saved
    assert FAKE_KEY[-16:] not in saved
