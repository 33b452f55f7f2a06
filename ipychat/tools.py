"""Python functions a model may call: described as JSON schemas, their
arguments checked before any call, their results turned into bounded text.

A ``Tool`` is made from a function, a bound method, a ``functools.partial``
or any callable whose signature can be described: parameters from the
signature and type hints (str, int, float, bool, lists and dicts of those,
``Literal``, ``Optional``, defaults; any other hint is a string), the
description from the docstring's first paragraph. ``*args`` and
``**kwargs`` cannot be described (a model passes named arguments only), so
such a function is refused before anything is sent.

Only the functions in a ``ToolBox`` can run: a call naming anything else,
or arguments that do not fit the schema, never reach Python; the model gets
an error result instead.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import types
from dataclasses import dataclass, field
from typing import Annotated, Callable, Dict, Iterable, List, Literal, Optional, Tuple, Union
from typing import get_args, get_origin

from . import errors
from .values import MAX_VALUE_CHARS, as_text, capped

#: Tool names as the APIs accept them (OpenAI's rule is the strictest).
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean"}
_META = "__ipychat_tool__"


def tool(function: Optional[Callable] = None, *, name: Optional[str] = None,
         description: Optional[str] = None):
    """Optionally name or describe a tool: ``@tool``, ``@tool(name="weather")``.

    The function itself is returned (marked), so it stays an ordinary function.
    """
    def mark(target: Callable) -> Callable:
        meta = {"name": name, "description": description}
        try:
            setattr(target, _META, meta)
        except AttributeError:  # a bound method: mark a partial of it instead
            target = functools.partial(target)
            setattr(target, _META, meta)
        return target

    return mark(function) if function is not None else mark


class BadArguments(ValueError):
    """Arguments from the model that do not fit a tool's parameters."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    #: A JSON schema of type ``object``.
    parameters: dict
    function: Callable = field(repr=False)
    #: Positional-only parameters, passed by position in this order.
    positional: Tuple[str, ...] = ()

    @property
    def schema(self) -> dict:
        """The neutral form each provider writes its own way."""
        return {"name": self.name, "description": self.description,
                "parameters": self.parameters}

    def arguments(self, raw: str) -> dict:
        """The model's JSON ``raw`` as checked keyword arguments, or ``BadArguments``."""
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError as err:
            raise BadArguments(f"the arguments are not JSON ({err})") from None
        if not isinstance(value, dict):
            raise BadArguments(f"the arguments must be a JSON object, not {_json_kind(value)}")
        properties = self.parameters["properties"]
        for key in value:
            if key not in properties:
                takes = ", ".join(properties) or "no arguments"
                raise BadArguments(f"{key!r} is not a parameter of {self.name} (it takes {takes})")
        for key in self.parameters.get("required", []):
            if key not in value:
                raise BadArguments(f"{key!r} is required")
        return {key: checked(item, properties[key], key) for key, item in value.items()}

    def call(self, arguments: dict):
        """Call the function (its result may be awaitable: the caller awaits it)."""
        args = [arguments.pop(name) for name in self.positional if name in arguments]
        return self.function(*args, **arguments)


def describe(function: Callable, name: Optional[str] = None) -> Tool:
    """``function`` as a ``Tool``; ``name``: what the user called it, used
    when no ``@tool(name=...)`` says otherwise. A ``UsageError`` when it
    cannot be described."""
    if not callable(function):
        raise errors.UsageError(f"{name or function!r} is a {type(function).__name__}, "
                                "not a function", hint="--tools takes function names.")
    meta = getattr(function, _META, None) or {}
    name = meta.get("name") or name or _own_name(function)
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise errors.UsageError(f"{name!r} cannot be a tool name (letters, digits, _ and -, "
                                "at most 64)", hint="Name it with @ipychat.tool(name=...).")
    description = meta.get("description") or first_paragraph(_docstring(function))
    parameters, positional = _parameters(function, name)
    return Tool(name, description, parameters, function, positional)


def _own_name(function) -> str:
    inner = _unwrapped(function)
    return getattr(inner, "__name__", type(inner).__name__)


def _unwrapped(function):
    while isinstance(function, functools.partial):
        function = function.func
    return function


def _docstring(function) -> str:
    inner = _unwrapped(function)
    return inspect.getdoc(inner) or ""


def first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n")[0].split())


def _signature(function, name: str) -> inspect.Signature:
    try:
        try:
            return inspect.signature(function, eval_str=True)
        except Exception:  # a hint that does not evaluate: described as a string
            return inspect.signature(function)
    except (TypeError, ValueError):
        raise errors.UsageError(f"cannot read the signature of tool {name}") from None


def _parameters(function, name: str) -> Tuple[dict, Tuple[str, ...]]:
    fixed = _partial_keywords(function)
    properties, required, positional = {}, [], []
    for param in _signature(function, name).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind == param.VAR_POSITIONAL else "**"
            raise errors.UsageError(
                f"tool {name} takes {star}{param.name}, which a model cannot pass",
                hint="Give it named parameters, or wrap it in a function that has them.")
        if param.name in fixed:  # set by the partial: not the model's to change
            continue
        properties[param.name] = parameter_schema(param)
        if param.default is param.empty:
            required.append(param.name)
        if param.kind == param.POSITIONAL_ONLY:
            positional.append(param.name)
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema, tuple(positional)


def _partial_keywords(function) -> set:
    fixed = set()
    while isinstance(function, functools.partial):
        fixed |= set(function.keywords)
        function = function.func
    return fixed


def parameter_schema(param: inspect.Parameter) -> dict:
    hint = param.annotation
    if hint is param.empty:  # no hint: the default's type, if it is a simple one
        hint = type(param.default) if type(param.default) in SIMPLE else str
    schema = dict(type_schema(hint))
    if param.default is None:  # ``x: str = None`` takes null, whatever the hint says
        schema = nullable(schema)
    if param.default is not param.empty and _is_json(param.default):
        schema["default"] = param.default
    return schema


def type_schema(hint) -> dict:
    """The JSON schema of a type hint; anything not described is a string."""
    if hint in SIMPLE:
        return {"type": SIMPLE[hint]}
    origin, args = get_origin(hint), get_args(hint)
    if origin is Annotated:
        schema = dict(type_schema(args[0]))
        notes = [note for note in args[1:] if isinstance(note, str)]
        return {**schema, "description": " ".join(notes)} if notes else schema
    if origin is Literal:
        return _literal(args)
    if origin in (Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return nullable(type_schema(rest[0]))
    if hint is list or origin is list:
        return {"type": "array", **({"items": type_schema(args[0])} if args else {})}
    if hint is dict or origin is dict:
        values = {"additionalProperties": type_schema(args[1])} if len(args) == 2 else {}
        return {"type": "object", **values}
    return {"type": "string"}


def _literal(values) -> dict:
    kinds = {SIMPLE.get(type(value)) for value in values}
    schema = {"enum": list(values)}
    return {"type": kinds.pop(), **schema} if len(kinds) == 1 and None not in kinds else schema


def nullable(schema: dict) -> dict:
    """``schema`` that also takes null (``Optional``)."""
    kind = schema.get("type")
    found = dict(schema)
    if isinstance(kind, str) and kind != "null":
        found["type"] = [kind, "null"]
    if "enum" in found and None not in found["enum"]:
        found["enum"] = [*found["enum"], None]
    return found


def _is_json(value) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# -- checking the model's arguments -------------------------------------------------

#: What a JSON schema type takes, as Python values (bool is not a number here).
_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
    "null": lambda v: v is None,
}


def checked(value, schema: dict, where: str):
    """``value`` if it fits ``schema`` (an integral float given for an integer
    becomes an int), else ``BadArguments`` saying what ``where`` must be."""
    if "enum" in schema and value not in schema["enum"]:
        raise BadArguments(f"'{where}' must be one of {_shown(schema['enum'])}, not "
                           f"{_shown(value)}")
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else kinds or []
    if kinds and not any(_CHECKS[kind](value) for kind in kinds):
        if "integer" in kinds and isinstance(value, float) and value.is_integer():
            return int(value)
        raise BadArguments(f"'{where}' must be {' or '.join(map(_a, kinds))}, not "
                           f"{_shown(value)}")
    if isinstance(value, list) and "items" in schema:
        return [checked(item, schema["items"], f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict) and "additionalProperties" in schema:
        inner = schema["additionalProperties"]
        return {key: checked(item, inner, f"{where}[{key!r}]") for key, item in value.items()}
    return value


def _a(kind: str) -> str:
    return {"integer": "an integer", "array": "a list", "object": "an object",
            "null": "null"}.get(kind, f"a {kind}")


def _json_kind(value) -> str:
    return _a(next(kind for kind, test in _CHECKS.items() if test(value)))


def _shown(value) -> str:
    return capped(json.dumps(value, ensure_ascii=False), 60)


# -- results ----------------------------------------------------------------------

def result_text(value, limit: int = MAX_VALUE_CHARS) -> str:
    """What the model gets back: JSON for dicts and lists, else the bounded
    text a ``{name}`` reference would give."""
    if isinstance(value, (dict, list)):
        try:
            return capped(json.dumps(value, ensure_ascii=False, default=str), limit)
        except (TypeError, ValueError):  # a key JSON cannot take, a cycle
            pass
    return as_text(value, limit)


def error_text(err: BaseException) -> str:
    """A tool's exception as the model sees it: its type and message."""
    message = errors.one_line(str(err))
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


# -- the tools of one question ------------------------------------------------------

class ToolBox:
    """The tools offered with a question, by name; only these can run."""

    def __init__(self, tools: Iterable[Tool] = ()):
        self.tools: Dict[str, Tool] = {}
        for found in tools:
            if found.name in self.tools:
                raise errors.UsageError(f"two tools are named {found.name}",
                                        hint="Rename one with @ipychat.tool(name=...).")
            self.tools[found.name] = found

    @classmethod
    def of(cls, functions: Iterable) -> "ToolBox":
        """From callables (or ``Tool`` objects), as the Python API takes them."""
        return cls(f if isinstance(f, Tool) else describe(f) for f in functions)

    @classmethod
    def from_names(cls, names: str, namespace: dict) -> "ToolBox":
        """From ``--tools f,g,obj.method``: names in the user's namespace."""
        return cls(describe(lookup(name, namespace), name.rsplit(".", 1)[-1])
                   for name in split_names(names))

    def get(self, name: str) -> Optional[Tool]:
        return self.tools.get(name)

    @property
    def names(self) -> List[str]:
        return list(self.tools)

    @property
    def schemas(self) -> List[dict]:
        return [found.schema for found in self.tools.values()]

    def __len__(self) -> int:
        return len(self.tools)

    def __repr__(self) -> str:
        return f"ToolBox({', '.join(self.tools)})"


def split_names(names: str) -> List[str]:
    found = [name.strip() for name in names.split(",") if name.strip()]
    for name in found:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z]\w*)*", name):
            raise errors.UsageError(f"--tools takes names like f or obj.method, not {name!r}")
    if not found:
        raise errors.UsageError("--tools needs at least one function name")
    return found


def lookup(name: str, namespace: dict):
    """The object ``name`` (maybe dotted, public attributes only) names."""
    first, *attributes = name.split(".")
    if first not in namespace:
        raise errors.UsageError(f"no function {first!r} in the notebook",
                                hint="Define it (or import it) before naming it in --tools.")
    value = namespace[first]
    for attribute in attributes:
        if not hasattr(value, attribute):
            raise errors.UsageError(f"{name!r} does not exist")
        value = getattr(value, attribute)
    return value
