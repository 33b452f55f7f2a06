"""Tools in the emulator: what a request says about them (``ToolState``,
read by ``inbound``, checked the way each API checks it), and the calls the
``call=`` directive asks for.

``[[emulator call=NAME[,NAME...] args=JSON rounds=N]]``: answer with calls
to those tools (``call=*``: every tool offered), as long as fewer than N
model turns with calls (default 1) came after the question. ``args`` is
sent as given (a JSON array gives each call its own); without it each
required parameter gets a value derived from its schema. Once the rounds
are done, the answer quotes the tool results it was sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import List, Optional, Tuple

from .faults import FaultError

#: A value for each JSON schema type, for arguments no directive gives.
EXAMPLES = {"string": "example", "integer": 1, "number": 1.5, "boolean": True, "array": [],
            "object": {}}


@dataclass(frozen=True)
class Offered:
    name: str
    parameters: dict


@dataclass(frozen=True)
class Result:
    name: str
    content: str
    is_error: bool = False


@dataclass(frozen=True)
class ToolState:
    """What a request says about tools."""

    offered: Tuple[Offered, ...] = ()
    #: Model turns with tool calls since the last question.
    rounds: int = 0
    #: The results sent since the last question, in order.
    results: Tuple[Result, ...] = ()
    #: How many messages came before: makes call ids unique in a conversation.
    seed: int = 0


@dataclass(frozen=True)
class PlannedCall:
    id: str
    name: str
    arguments: str

    def as_object(self):
        """The arguments as an object (for Anthropic and Ollama); the text itself
        when it is no JSON object (a directive asking for bad arguments)."""
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return self.arguments
        return value if isinstance(value, dict) else self.arguments


# -- the calls a directive asks for --------------------------------------------------

def planned_calls(state: ToolState, faults) -> Tuple[PlannedCall, ...]:
    """The calls this answer makes (none once ``rounds`` turns called tools)."""
    if not faults.call or state.rounds >= faults.rounds:
        return ()
    offered = {tool.name: tool for tool in state.offered}
    names = list(offered) if faults.call == "*" else faults.call.split(",")
    missing = [name for name in names if name not in offered]
    if missing or not names:
        raise FaultError(f"call={faults.call}: the request offers no tool "
                         f"{', '.join(missing) or 'at all'} (it offers "
                         f"{', '.join(offered) or 'none'})")
    arguments = _arguments(faults.args, [offered[name] for name in names])
    return tuple(PlannedCall(f"call_{state.seed}_{i}", name, text)
                 for i, (name, text) in enumerate(zip(names, arguments)))


def _arguments(given: Optional[str], tools: List[Offered]) -> List[str]:
    if given is None:
        return [json.dumps(derived_arguments(tool.parameters)) for tool in tools]
    try:
        value = json.loads(given)
    except ValueError:
        value = None
    if isinstance(value, list) and len(value) == len(tools):
        return [json.dumps(item) for item in value]
    return [given] * len(tools)


def derived_arguments(parameters: dict) -> dict:
    """A value for each required parameter, from its schema."""
    properties = parameters.get("properties") or {}
    return {name: example(properties.get(name) or {}) for name in parameters.get("required", [])}


def example(schema: dict):
    choices = [value for value in schema.get("enum") or [] if value is not None]
    if choices:
        return choices[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return EXAMPLES.get(kind, "example")
