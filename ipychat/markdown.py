"""Model output as Markdown that can never run code.

JupyterLab trusts outputs made in the running session, and its Markdown
renderer then keeps raw HTML (``<script>``, ``onerror=``). ``safe_markdown``
escapes ``<`` and ``&`` outside code (where they show literally anyway) and
defuses script-scheme links. Code is left alone only where the renderer
surely sees code too; anywhere in doubt we escape (at worst ``&lt;`` shows in
code), since text we take for code but Markdown does not would run.

Prose is escaped in windows of ~64 KB cut at line ends, each with a few
C-level passes (``str.replace``, one ``re.split`` for code spans): a 5 MB
answer costs its escaped copy and about as much again while that is joined,
not a list of every line and a copy per replacement (which peaked at 3.8x
the text).

Lines end where Markdown ends them (``\\n``, ``\\r\\n``, ``\\r``), not at the
other characters ``str.splitlines`` breaks at: reading ``a\\u2028```\\n`` as
a fence where Markdown sees one paragraph line left the next tag unescaped.
"""

from __future__ import annotations

import re
from typing import List, Optional

#: Prose is escaped in windows of about this many characters.
_WINDOW = 64 * 1024
#: Joins the code-free gaps of a window so one ``replace`` escapes them all;
#: a noncharacter, not a space or control character (see ``_SCRIPT_LINK``).
_SENTINEL = "\uffff"

# A line that may open or close a fence in some container (list item, quote).
_FENCE_ISH = re.compile(r"[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+|>[ \t]?)*(?:`{3,}|~{3,})")
_FENCE_RUN = re.compile(r"`{3,}|~{3,}")
_OPENER = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|\Z)")
# One line, no table pipe, not an escaped backtick: never wider than Markdown's
# own. Captured whole, so that ``split`` returns gap, span, ticks, gap...
_CODE_SPAN = re.compile(r"((?<![`\\])(`+)(?!`)[^\n|]+?(?<!`)\2(?!`))")
# A link destination with a script scheme: inline ``](...)`` or a reference
# definition ``]: ...`` (also inside quotes and lists), after any spaces or
# control characters browsers strip, with the colon maybe backslash-escaped.
_SCRIPT_LINK = re.compile(r"(\]\(|\]:)([\x00-\x20]*)(?:javascript|vbscript|data)(?=\\?:)",
                          re.IGNORECASE)


def safe_markdown(text: str, *more: str) -> str:
    """``text`` with raw HTML neutralised; each of ``more`` is escaped on its
    own and appended (a header, a mark), without copying ``text`` first."""
    out = _Output()
    for part in (text, *more):
        _add_safe(part, out)
    return out.joined()


class _Output:
    """Escaped pieces, and the stretches of the input kept as they are.

    Kept stretches are indexes, not copies, until the end: a text with
    nothing to escape comes back as itself, never copied.
    """

    def __init__(self):
        self._pieces: List[object] = []  # str, or [text, start, end] kept as is
        self._escaped = False

    def keep(self, text: str, start: int, end: int) -> None:
        last = self._pieces[-1] if self._pieces else None
        if isinstance(last, list) and last[0] is text and last[2] == start:
            last[2] = end
        elif start < end:
            self._pieces.append([text, start, end])

    def add(self, piece: str) -> None:
        self._escaped = True
        self._pieces.append(piece)

    def joined(self) -> str:
        pieces = self._pieces
        if not pieces:
            return ""
        if len(pieces) == 1 and not self._escaped:
            text, start, end = pieces[0]
            if (start, end) == (0, len(text)):
                return text
        return "".join([p if isinstance(p, str) else p[0][p[1]:p[2]] for p in pieces])


def _add_safe(text: str, out: _Output) -> None:
    """Add ``text``'s prose escaped and its sure fences as they are."""
    prose = 0  # start of the prose not yet added
    while True:
        start = _next_fence_ish(text, prose)
        end = None if start is None else _fence_end(text, start)
        if end is None:  # no fence, or one we cannot place for sure: all is prose
            break
        _add_prose(text, prose, start, out)
        out.keep(text, start, end)
        prose = end
    _add_prose(text, prose, len(text), out)


def segment_end(text: str, start: int, limit: int) -> int:
    """Where an output showing ``text`` from ``start`` should end, at most
    ``limit`` characters on: after the last blank line in the second half
    that is outside sure fences; else before the fence the limit would cut;
    else after the last line break; else at the limit."""
    high, low = start + limit, start + limit // 2
    fences = _fences(text, start, high)
    blank = text.rfind("\n\n", low, high)
    while blank >= 0:
        if not any(s < blank + 2 < e for s, e in fences):
            return blank + 2
        blank = text.rfind("\n\n", low, blank + 1)
    cut = [s for s, e in fences if start < s < high < e]
    if cut:
        return cut[0]
    newline = text.rfind("\n", start, high)
    return newline + 1 if newline >= start else high


def open_fence(text: str) -> str:
    """The line that closes the code block ``text`` ends inside, or ''.

    What is appended after a streaming answer (its tool calls) must not
    land in a block the answer has not closed yet. Only a sure fence is
    closed: closing what Markdown does not see as one would open a block.
    """
    fences = _fences(text, 0, len(text))
    if not fences or fences[-1][1] < len(text) or _fence_end(text, fences[-1][0]) is None:
        return ""
    first = _LINE.match(text, fences[-1][0])
    fence = _OPENER.fullmatch(first.group().rstrip("\r\n")).group(2)
    closer = re.compile(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
    if any(closer.fullmatch(line.group().rstrip("\r\n"))
           for line in _LINE.finditer(text, first.end())):
        return ""
    return ("" if text.endswith(("\n", "\r")) else "\n") + fence


def _fences(text: str, pos: int, high: int) -> List[tuple]:
    """(start, end) of the fences that open before ``high``; one we cannot
    place for sure runs to the end of the text."""
    found = []
    while pos < high:
        start = _next_fence_ish(text, pos)
        if start is None or start >= high:
            break
        end = _fence_end(text, start)
        found.append((start, len(text) if end is None else end))
        if end is None:
            break
        pos = end
    return found


def _next_fence_ish(text: str, pos: int) -> Optional[int]:
    """Start of the first line at or after ``pos`` (a line start) that may
    open a fence. Only lines holding a run of three backticks or tildes are
    looked at, so a long answer without fences costs one ``search``."""
    while pos < len(text):
        run = _FENCE_RUN.search(text, pos)
        if run is None:
            return None
        start = _line_start(text, pos, run.start())
        if _FENCE_ISH.match(text, start):
            return start
        pos = _LINE.match(text, run.end()).end()  # the rest of this line is prose
    return None


def _line_start(text: str, floor: int, pos: int) -> int:
    return max(text.rfind("\n", floor, pos), text.rfind("\r", floor, pos), floor - 1) + 1


def _fence_end(text: str, start: int) -> Optional[int]:
    """Position after the fence opened on the line at ``start``, if it is surely a fence.

    The opener is indented ``k`` spaces: at top level, or in a list item whose
    content starts at ``k`` or before. Content lines indented at least ``k``
    (and a closer too) keep it a fence either way; one indented less may end
    the list item, and with it the fence, so we are no longer sure.
    """
    first = _LINE.match(text, start)
    opener = _OPENER.fullmatch(first.group().rstrip("\r\n"))
    if opener is None or (opener.group(2)[0] == "`" and "`" in opener.group(3)):
        return None
    indent, fence = len(opener.group(1)), opener.group(2)
    closer = re.compile(rf"( {{0,3}}){re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
    if indent == 0:  # no line can be indented less: only the closer matters
        return _closer_end(text, first.end(), fence, closer)
    for found in _LINE.finditer(text, first.end()):
        line = found.group()
        if not line:  # the end of the text: the fence runs to it
            break
        line = line.rstrip("\r\n")
        if line.strip() and _indent(line) < indent:
            return None
        if closer.fullmatch(line):
            return found.end()
    return len(text)


def _closer_end(text: str, pos: int, fence: str, closer: re.Pattern) -> int:
    """End of the first closing line at or after ``pos``, or of the text."""
    while pos < len(text):
        found = text.find(fence, pos)
        if found < 0:
            break
        line = _LINE.match(text, _line_start(text, pos, found))
        if closer.fullmatch(line.group().rstrip("\r\n")):
            return line.end()
        pos = _LINE.match(text, found).end()
    return len(text)


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def _add_prose(text: str, start: int, end: int, out: _Output) -> None:
    while start < end:
        cut = _window_end(text, start, end)
        window = text if (start, cut) == (0, len(text)) else text[start:cut]
        safe = _escape_window(window)
        if safe is window:
            out.keep(text, start, cut)
        else:
            out.add(safe)
        start = cut


def _window_end(text: str, start: int, end: int) -> int:
    """Where to cut the prose for a window: after a line break that no code
    span (one line) and no script link (``](`` then spaces or control
    characters, line breaks included) can reach across."""
    pos = start + _WINDOW
    while pos < end:
        newline = text.find("\n", pos, end)
        if newline < 0:
            break
        before = text[newline - 2] if text[newline - 1] == "\r" else text[newline - 1]
        if before > " " and before not in "(:":
            return newline + 1
        pos = newline + 1
    return end


def _escape_window(text: str) -> str:
    """Escape all but the code spans of one window of prose."""
    parts = _CODE_SPAN.split(text) if "`" in text else [text]
    if len(parts) == 1:
        return _escape_html(text)
    gaps, spans = parts[0::3], parts[1::3]
    if _SENTINEL in text:
        escaped = [_escape_html(gap) for gap in gaps]
    else:
        joined = _SENTINEL.join(gaps)
        safe = _escape_html(joined)
        if safe is joined:
            return text
        escaped = safe.split(_SENTINEL)
    out = [""] * (len(gaps) + len(spans))
    out[0::2], out[1::2] = escaped, spans
    return "".join(out)


def _escape_html(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return _SCRIPT_LINK.sub(r"\1\2#unsafe-link", text)
