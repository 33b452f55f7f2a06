"""``{references}`` in a prompt: notebook values, cells, errors and figures.

Python's format-field syntax over the user's namespace: ``{name}``,
``{name.attr}``, ``{name[0]}``, ``{name['key']}``, ``{In[3]}``,
``{Out[3]}``, ``{Err[3]}``, ``{_}``. No calls and no expressions: a prompt
from someone else's notebook must not run code of its choosing, so only
names, public attributes and constant indexes are followed; an attribute
starting with ``_`` is not (``{f.__globals__}`` stays as written, as in
sandboxed templates). Anything that does not resolve stays as written, so
code in braces survives; ``{{`` and ``}}`` escape.

A prompt leaves the kernel. One whose text would contain the value of a
secret ipychat knows (an API key variable, a cookie variable) is refused
before anything is sent, naming the variable, never the value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Union

from . import errors
from .values import MAX_VALUE_CHARS, Image, as_image, as_text, from_bytes

#: Total image bytes one prompt may carry.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Shorter environment values are not treated as secrets (too many false alarms).
MIN_SECRET_LENGTH = 8

_FIELD = re.compile(
    r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)"
    r"((?:\.[A-Za-z_][A-Za-z0-9_]*|\[(?:-?\d+|'[^'\]\n]*'|\"[^\"\]\n]*\")\])*)\}")
_ACCESSOR = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(-?\d+|'[^'\]\n]*'|\"[^\"\]\n]*\")\]")
_UNRESOLVED = object()


@dataclass
class Prompt:
    """A prompt as text and images, in order."""

    parts: List[Union[str, Image]] = field(default_factory=list)

    def add(self, piece: Union[str, Image]) -> None:
        if isinstance(piece, str) and self.parts and isinstance(self.parts[-1], str):
            self.parts[-1] += piece
        elif piece != "":
            self.parts.append(piece)

    @property
    def images(self) -> List[Image]:
        return [p for p in self.parts if isinstance(p, Image)]

    @property
    def text(self) -> str:
        """The prompt with a short placeholder for each image (what the history keeps)."""
        return "".join(p if isinstance(p, str) else p.placeholder() for p in self.parts)

    def content(self):
        """The message content: text, or neutral text and image parts when it has images."""
        if not self.images:
            return self.text
        return [{"type": "text", "text": p} if isinstance(p, str) else p.part()
                for p in self.parts]

    def strip(self) -> "Prompt":
        parts = list(self.parts)
        if parts and isinstance(parts[0], str):
            parts[0] = parts[0].lstrip()
        if parts and isinstance(parts[-1], str):
            parts[-1] = parts[-1].rstrip()
        return Prompt([p for p in parts if p != ""])


def expand(text: str, namespace: dict, limit: int = MAX_VALUE_CHARS) -> Prompt:
    """``text`` with each resolvable field replaced by its value (text or image)."""
    prompt = Prompt()
    last = 0
    for match in _FIELD.finditer(text):
        prompt.add(text[last:match.start()])
        last = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            prompt.add(token[0])
            continue
        value = resolve(match.group(1), match.group(2), namespace)
        if value is _UNRESOLVED:
            prompt.add(token)
            continue
        image = as_image(value)
        prompt.add(image if image is not None else as_text(value, limit))
    prompt.add(text[last:])
    return prompt


def prepare(text: str, namespace: dict, secrets: Iterable[str],
            limit: int = MAX_VALUE_CHARS) -> Prompt:
    """A typed question as it will be sent: expanded, stripped, and checked for
    secrets and image size (the magic and the panel alike)."""
    prompt = expand(text, namespace, limit).strip()
    check(prompt, secrets)
    return prompt


def check(prompt: Prompt, secrets: Iterable[str]) -> None:
    refuse_secrets(prompt.text, secrets)
    check_images(prompt)


def resolve(name: str, accessors: str, namespace: dict):
    """The value a field names, or ``_UNRESOLVED``."""
    if name not in namespace:
        return _UNRESOLVED
    value = namespace[name]
    for match in _ACCESSOR.finditer(accessors):
        value = _step(value, match.group(1), match.group(2))
        if value is _UNRESOLVED:
            break
    return value


def _step(value, attribute: Optional[str], index: Optional[str]):
    try:
        if attribute is not None:
            if attribute.startswith("_"):
                return _UNRESOLVED
            return getattr(value, attribute)
        key = int(index) if index[0] not in "'\"" else index[1:-1]
        return value[key]
    except Exception:  # a missing key, an attribute that raised: the field stays as written
        return _UNRESOLVED


def image_file(path: str) -> Image:
    """An ``--image`` file: PNG or JPEG, else a one-line error."""
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as err:
        raise errors.UsageError(f"cannot read --image {path!r}: {err.strerror or err}") from None
    image = from_bytes(data, os.path.basename(path))
    if image is None:
        raise errors.UsageError(f"--image {path!r} is not a PNG or JPEG file")
    return image


def check_images(prompt: Prompt, limit: int = MAX_IMAGE_BYTES) -> None:
    total = sum(len(image.data) for image in prompt.images)
    if total > limit:
        raise errors.UsageError(
            f"the images in this prompt take {total / 2**20:.1f} MB; at most "
            f"{limit / 2**20:.0f} MB may go with one question",
            hint="Send fewer or smaller images (a figure's dpi, a picture's size).")


def refuse_secrets(text: str, variables: Iterable[str]) -> None:
    """Refuse a prompt that would carry the value of a secret environment variable."""
    for name in variables:
        value = os.environ.get(name) if name else None
        if value and len(value) >= MIN_SECRET_LENGTH and value in text:
            raise errors.UsageError(
                f"the prompt contains the value of {name}, a secret; nothing was sent",
                hint="Take out of the prompt the field or text that brings it in.")
