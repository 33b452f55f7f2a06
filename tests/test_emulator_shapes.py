"""The exact wire shapes the emulator's answers should have, written out here
from the protocols' documentation rather than from the emulator's code, so
tests compare whole event lists against them (no tests here).

Counts are the emulator's stand-ins: input tokens are the words of the
messages, output tokens the pieces sent (reasoning and answer).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Optional, Sequence

from tests.test_emulator_kit import ANTHROPIC_HEADERS, MODELS, Raw, post, user

CREATED = 1700000000
OLLAMA_AT = "2024-01-01T00:00:00Z"
OLLAMA_TIMES = {"total_duration": 1_000_000, "load_duration": 100_000,
                "prompt_eval_duration": 200_000, "eval_duration": 700_000}


def words(*texts: str) -> int:
    return sum(len(text.split()) for text in texts)


# -- requests -------------------------------------------------------------------


async def ask_openai(url: str, text: str, lockchat: bool = False, **fields) -> Raw:
    model = MODELS["lockchat" if lockchat else "openai"]
    agent = {"User-Agent": "ChatX/39 CFNetwork/1408.0.4 Darwin/22.5.0"} if lockchat else {}
    body = {"model": model, "messages": user(text), "stream": True, **fields}
    return await post(url + "/v1/chat/completions", body, headers=agent)


async def ask_anthropic(url: str, text: str, **fields) -> Raw:
    body = {"model": MODELS["anthropic"], "max_tokens": 8192, "messages": user(text),
            "stream": True, **fields}
    return await post(url + "/v1/messages", body, headers=ANTHROPIC_HEADERS)


async def ask_ollama(url: str, text: str, **fields) -> Raw:
    body = {"model": MODELS["ollama"], "messages": user(text), **fields}
    return await post(url + "/ollama/api/chat", body)


# -- OpenAI ------------------------------------------------------------------------


def openai_chunk(first: dict, delta: dict, finish: Optional[str] = None,
                 usage: bool = False) -> dict:
    chunk = {"id": first["id"], "object": "chat.completion.chunk", "created": CREATED,
             "model": first["model"], "system_fingerprint": "fp_emulator",
             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                          "finish_reason": finish}]}
    if usage:  # with include_usage every chunk says "usage": null but the last
        chunk["usage"] = None
    return chunk


def openai_usage(prompt: int, completion: int, reasoning: Optional[int] = None) -> dict:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
             "total_tokens": prompt + completion}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def openai_stream(first: dict, reasoning: Sequence[str] = (), answer: Sequence[str] = (),
                  key: str = "reasoning_content", finish: str = "stop",
                  usage: Optional[dict] = None) -> list:
    """Every event of an OpenAI stream: (None, chunk) ... (None, "[DONE]")."""
    asked = usage is not None
    deltas = ([{"role": "assistant", "content": ""}] + [{key: p} for p in reasoning]
              + [{"content": p} for p in answer])
    chunks = [openai_chunk(first, d, usage=asked) for d in deltas]
    chunks.append(openai_chunk(first, {}, finish, usage=asked))
    if asked:
        chunks.append({"id": first["id"], "object": "chat.completion.chunk",
                       "created": CREATED, "model": first["model"],
                       "system_fingerprint": "fp_emulator", "choices": [], "usage": usage})
    return [(None, c) for c in chunks] + [(None, "[DONE]")]


# -- Anthropic ---------------------------------------------------------------------


def signature(thinking: str) -> str:
    """The emulator's thinking signature: base64 of the SHA-256 of the thinking text."""
    return base64.b64encode(hashlib.sha256(thinking.encode("utf-8")).digest()).decode()


def anthropic_message(first: dict, content: list, stop: Optional[str], inputs: int,
                      outputs: int) -> dict:
    return {"id": first["id"], "type": "message", "role": "assistant",
            "model": first["model"], "content": content, "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": inputs, "output_tokens": outputs}}


def _delta(index: int, delta: dict) -> tuple:
    return ("content_block_delta", {"type": "content_block_delta", "index": index,
                                    "delta": delta})


def _block(kind: str, index: int, block: Optional[dict] = None) -> tuple:
    data = {"type": kind, "index": index}
    if block is not None:
        data["content_block"] = block
    return (kind, data)


def anthropic_stream(first: dict, inputs: int, reasoning: Sequence[str] = (),
                     answer: Sequence[str] = (), stop: str = "end_turn",
                     text_block: bool = True) -> list:
    """Every event of a Messages stream; ``first`` is message_start's message."""
    events = [("message_start", {"type": "message_start",
                                 "message": anthropic_message(first, [], None, inputs, 1)})]
    text_at = 0
    if reasoning:
        events += [_block("content_block_start", 0, {"type": "thinking", "thinking": ""}),
                   ("ping", {"type": "ping"})]
        events += [_delta(0, {"type": "thinking_delta", "thinking": p}) for p in reasoning]
        events += [_delta(0, {"type": "signature_delta",
                              "signature": signature("".join(reasoning))}),
                   _block("content_block_stop", 0)]
        text_at = 1
    if text_block:
        events.append(_block("content_block_start", text_at, {"type": "text", "text": ""}))
        if not reasoning:
            events.append(("ping", {"type": "ping"}))
        events += [_delta(text_at, {"type": "text_delta", "text": p}) for p in answer]
        events.append(_block("content_block_stop", text_at))
    events += [("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": stop, "stop_sequence": None},
                                  "usage": {"output_tokens": len(reasoning) + len(answer)}}),
               ("message_stop", {"type": "message_stop"})]
    return events


# -- Ollama ------------------------------------------------------------------------


def ollama_line(content: str = "", thinking: Optional[str] = None) -> dict:
    message = {"role": "assistant", "content": content}
    if thinking is not None:
        message["thinking"] = thinking
    return {"model": MODELS["ollama"], "created_at": OLLAMA_AT, "message": message,
            "done": False}


def ollama_final(prompt: int, count: int, reason: str = "stop", content: str = "",
                 thinking: Optional[str] = None) -> dict:
    line = ollama_line(content, thinking)
    return {**line, "done": True, "done_reason": reason, "prompt_eval_count": prompt,
            "eval_count": count, **OLLAMA_TIMES}


def ollama_stream(prompt: int, reasoning: Sequence[str] = (), answer: Sequence[str] = (),
                  reason: str = "stop") -> list:
    return ([ollama_line("", p) for p in reasoning] + [ollama_line(p) for p in answer]
            + [ollama_final(prompt, len(reasoning) + len(answer), reason)])
