"""Ollama's native chat API: ``POST {base}/api/chat``, newline-delimited JSON.

Each line is ``{"message": {"content": ..., "thinking": ...}, "done": false}``;
the last one has ``"done": true``, ``done_reason`` and the token counts
(``prompt_eval_count``, ``eval_count``); a line with ``"error"`` reports a
failure mid-stream. Tool calls arrive whole in ``message.tool_calls``, their
arguments as a JSON object (ids only from newer servers: we number the rest);
results go back as ``role: "tool"`` messages naming the tool.
"""

from __future__ import annotations

import itertools
import json
from typing import Iterator, List, Optional

import aiohttp

from .. import errors
from ..events import Event, Reasoning, Text, ToolCall, finish, usage
from ..messages import text_of
from ..streams import ndjson
from .base import HTTPProvider
from .http import (Call, check_status, client_timeout, get_json, open_session, parse_json,
                   request_options, translate)
from .openai_chunks import is_json

#: Request fields Ollama reads at the top level, not inside "options".
TOP_LEVEL = ("format", "keep_alive", "think", "tools")


def request_body(call: Call) -> dict:
    body = {"model": call.model, "messages": [wire_message(m) for m in call.messages],
            "stream": True}
    options = {k: v for k, v in call.options.items() if k not in TOP_LEVEL}
    if call.max_tokens is not None:
        options = {"num_predict": call.max_tokens, **options}
    top = {k: v for k, v in call.options.items() if k in TOP_LEVEL}
    if call.reasoning is not None and "think" not in top:
        top["think"] = think_value(call)
    if call.tools and "tools" not in top:
        top["tools"] = [{"type": "function", "function": schema} for schema in call.tools]
    return {**body, "options": options, **top}


def wire_message(message: dict) -> dict:
    """A neutral message in Ollama's form: images as an ``images`` list next to
    the text; tool calls with their arguments as objects; results by tool name."""
    if message["role"] == "tool":
        content = message["content"]
        return {"role": "tool", "content": f"Error: {content}" if message.get("is_error")
                else content, "tool_name": message.get("name") or ""}
    if message.get("tool_calls"):
        return {"role": "assistant", "content": message["content"],
                "tool_calls": [{"function": {"name": c["name"],
                                             "arguments": arguments_object(c["arguments"])}}
                               for c in message["tool_calls"]]}
    content = message["content"]
    if isinstance(content, str):
        return message
    images = [part["data"] for part in content if part["type"] == "image"]
    return {**message, "content": text_of(content), "images": images}


def think_value(call: Call):
    """``think``: a level for the models that take one (gpt-oss), else on or off."""
    if call.reasoning == "off":
        return False
    return call.reasoning if str(call.model or "").startswith("gpt-oss") else True


def arguments_object(arguments: str):
    """Ollama takes arguments as an object: the JSON text parsed (``{}`` if it was
    no object: the model then had an error result for it)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def line_events(line, call: Call, numbers: Iterator[int] = None) -> List[Event]:
    """The events of one NDJSON line; an error line raises. ``numbers`` give
    ids to tool calls that come without one."""
    if not isinstance(line, dict):
        raise errors.MalformedStreamError("a line is not a JSON object", str(line)[:80],
                                          provider=call.provider)
    if "error" in line:
        message = errors.one_line(line["error"] or "the server reported an error")
        raise errors.ProviderError(message, provider=call.provider)
    message = line.get("message")
    found: List[Event] = []
    if isinstance(message, dict):
        if message.get("thinking"):
            found.append(Reasoning(str(message["thinking"])))
        if message.get("content"):
            found.append(Text(str(message["content"])))
        found += tool_calls(message.get("tool_calls"), numbers or itertools.count(), call)
    if line.get("done"):
        counted = usage(line.get("prompt_eval_count"), line.get("eval_count"))
        found += [e for e in (counted, finish(line.get("done_reason"))) if e is not None]
    return found


def tool_calls(calls, numbers: Iterator[int], call: Call) -> List[ToolCall]:
    if not calls:
        return []
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        raise errors.MalformedStreamError("tool_calls is not a list of objects", str(calls)[:80],
                                          provider=call.provider)
    found = []
    for entry in calls:
        function = entry.get("function") if isinstance(entry.get("function"), dict) else {}
        arguments = function.get("arguments", {})
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        number = next(numbers)
        found.append(ToolCall(str(entry.get("id") or f"call_{number}"),
                              str(function.get("name") or ""), arguments))
    return found


def not_running(err: aiohttp.ClientConnectorError, call: Call) -> errors.ChatError:
    failure = translate(err, call, started=False)
    if not isinstance(err, aiohttp.ClientProxyConnectionError):
        failure.hint = (f"Ollama does not seem to run at {call.base_url}; "
                        "start it with `ollama serve`.")
    return failure


class Ollama(HTTPProvider):
    url = "http://localhost:11434"
    default_base_url = HTTPProvider.env_url("OLLAMA_HOST", url, default_port=11434)
    working = True
    supports_stream = True
    supports_message_history = True
    model = "llama3.2"
    takes_reasoning = True
    takes_images = True
    takes_tools = True

    @classmethod
    async def generate(cls, call: Call):
        async with open_session(call) as session:
            try:
                response = await session.post(call.url("/api/chat"), json=request_body(call),
                                              **request_options(call))
            except aiohttp.ClientConnectorError as err:
                raise not_running(err, call) from err
            async with response:
                await check_status(response, call)
                if is_json(response):  # a proxy or mock that answered whole
                    line = parse_json(await response.read(), call, "the answer is not JSON")
                    lines = [{**line, "done": True} if isinstance(line, dict) else line]
                else:
                    lines = ndjson(response.content.iter_any())
                numbers = itertools.count()
                async for line in _each(lines):
                    for event in line_events(line, call, numbers):
                        yield event
                    if line.get("done"):
                        return
        raise errors.StreamCutShort("the stream ended before its done line",
                                    provider=call.provider)


    @classmethod
    async def list_models(cls, base_url: Optional[str] = None, api_key: Optional[str] = None,
                          *, api_key_env: Optional[str] = None, proxy: Optional[str] = None,
                          timeout=None) -> List[str]:
        """The sorted names of the models pulled on the server (``GET {base}/api/tags``)."""
        del api_key, api_key_env  # Ollama takes no key
        call = Call(provider=cls.label(), model=None, messages=[],
                    base_url=(base_url or cls.default_base_url).rstrip("/"),
                    proxy=proxy or None, timeout=client_timeout(timeout))
        reply = await get_json(call, "/api/tags", what="the model list is not JSON")
        found = reply.get("models") if isinstance(reply, dict) else None
        if not isinstance(found, list):
            raise errors.MalformedStreamError("the model list has no 'models' list",
                                              str(reply)[:80], provider=call.provider)
        return sorted(str(m["name"]) for m in found if isinstance(m, dict) and "name" in m)


async def _each(lines):
    """A list or an async iterator of lines, as an async iterator."""
    if isinstance(lines, list):
        for line in lines:
            yield line
        return
    async for line in lines:
        yield line
