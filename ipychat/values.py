"""Notebook values as prompt material: bounded text, or an image.

A prompt is sent over the network and paid for by the token, so a value is
described, never dumped: text is capped with a visible note of what was
cut, data frames give their shape, columns and first rows, numpy arrays
their own summarising repr. pandas, polars, numpy, matplotlib and PIL are
recognised by their type's module when the user has them; none is
imported here, none is required.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Optional

#: Default cap on one value's text (``ChatMagics.max_value_chars``).
MAX_VALUE_CHARS = 20_000
#: Rows of a data frame shown as its sample.
SAMPLE_ROWS = 5
PNG_MAGIC, JPEG_MAGIC = b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"


@dataclass(frozen=True)
class Image:
    """An image for a model that can see: raw bytes and their media type."""

    data: bytes
    media_type: str
    label: str = "image"

    def part(self) -> dict:
        """The neutral message part each provider turns into its own form."""
        return {"type": "image", "media_type": self.media_type,
                "data": base64.b64encode(self.data).decode("ascii")}

    def placeholder(self) -> str:
        """What the history keeps instead of the bytes."""
        kind = self.media_type.split("/")[-1].upper()
        return f"[{self.label}: {kind}, {len(self.data) / 1024:,.0f} KB]"


def _type_name(value) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def as_image(value) -> Optional[Image]:
    """``value`` as an image when it is one (a figure, a picture, image bytes)."""
    name = _type_name(value)
    if name.startswith("matplotlib.") and hasattr(value, "savefig"):
        return Image(_saved(value.savefig, format="png", bbox_inches="tight"), "image/png",
                     "figure")
    if name.startswith("PIL.") and hasattr(value, "save") and hasattr(value, "mode"):
        return Image(_saved(value.save, format="PNG"), "image/png", "picture")
    if name == "IPython.core.display.Image" and isinstance(getattr(value, "data", None), bytes):
        return from_bytes(value.data)
    if isinstance(value, (bytes, bytearray)):
        return from_bytes(bytes(value))
    return None


def from_bytes(data: bytes, label: str = "image") -> Optional[Image]:
    if data.startswith(PNG_MAGIC):
        return Image(data, "image/png", label)
    if data.startswith(JPEG_MAGIC):
        return Image(data, "image/jpeg", label)
    return None


def _saved(save, **options) -> bytes:
    buffer = io.BytesIO()
    save(buffer, **options)
    return buffer.getvalue()


def as_text(value, limit: int = MAX_VALUE_CHARS) -> str:
    """``value`` as text for a prompt, at most about ``limit`` characters."""
    return capped(_described(value), limit)


def _described(value) -> str:
    if isinstance(value, str):
        return value
    name = _type_name(value)
    if name.startswith("pandas.") and hasattr(value, "dtypes") and hasattr(value, "head"):
        return _pandas(value, name)
    if name.startswith("polars.") and hasattr(value, "head") and hasattr(value, "shape"):
        return _polars(value)  # a DataFrame or a Series (a LazyFrame has no shape)
    if name.startswith("numpy.") and hasattr(value, "shape"):
        return repr(value)  # numpy's repr summarises arrays past 1,000 items itself
    return str(value)


def _pandas(value, name: str) -> str:
    rows = value.head(SAMPLE_ROWS).to_string()
    if name.endswith("Series"):
        head = f"pandas Series {value.name!r}, {len(value):,} rows, dtype {value.dtype}"
        return f"{head}\nfirst {min(SAMPLE_ROWS, len(value))} rows:\n{rows}"
    shape = f"{value.shape[0]:,} rows × {value.shape[1]:,} columns"
    columns = "\n".join(f"  {column}: {dtype}" for column, dtype in value.dtypes.items())
    return (f"pandas DataFrame, {shape}\ncolumns:\n{columns}\n"
            f"first {min(SAMPLE_ROWS, len(value))} rows:\n{rows}")


def _polars(value) -> str:
    sample = value.head(SAMPLE_ROWS)
    if hasattr(value, "columns"):
        shape = f"{value.shape[0]:,} rows × {value.shape[1]:,} columns"
        columns = "\n".join(f"  {column}: {dtype}" for column, dtype in value.schema.items())
        return f"polars DataFrame, {shape}\ncolumns:\n{columns}\nfirst rows:\n{sample}"
    return f"polars Series {value.name!r}, {len(value):,} rows, dtype {value.dtype}\n{sample}"


def capped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying what was cut."""
    if limit <= 0 or len(text) <= limit:
        return text
    left = len(text) - limit
    return (f"{text[:limit]}\n… [{left:,} more characters cut: a value is capped at "
            f"{limit:,} characters (ChatMagics.max_value_chars)]")
