"""The escaper as it was before it went one-pass (session 1, commit 1551344),
frozen as a reference: the one-pass ``ipychat.markdown.safe_markdown`` must
give the same output for every text that uses only Markdown's own line
endings (this one also broke lines at \x0b, \x0c, \x1c-\x1e, \x85, U+2028
and U+2029, which Markdown does not, and which let a tag through).
"""

import re

# Any line that may open or close a fence in some container (list item, quote).
_FENCE_ISH = re.compile(r"[ \t]*(?:(?:[-+*]|\d{1,9}[.)])[ \t]+|>[ \t]?)*(?:`{3,}|~{3,})")
_OPENER = re.compile(r"( {0,3})(`{3,}|~{3,})(.*)")
# One line, no table pipe, not an escaped backtick: never wider than Markdown's own.
_CODE_SPAN = re.compile(r"(?<![`\\])(`+)(?!`)[^\n|]+?(?<!`)\1(?!`)")
# A link destination with a script scheme: inline ``](...)`` or a reference
# definition ``]: ...`` (also inside quotes and lists), after any spaces or
# control characters browsers strip, with the colon maybe backslash-escaped.
_SCRIPT_LINK = re.compile(r"(\]\(|\]:)([\x00-\x20]*)(?:javascript|vbscript|data)(?=\\?:)",
                          re.IGNORECASE)


def safe_markdown(text: str) -> str:
    """Markdown with raw HTML neutralised: model output must never run code.

    JupyterLab trusts outputs made in the running session, and its Markdown
    renderer then keeps raw HTML (``<script>``, ``onerror=``). We escape
    ``<`` outside code (where it shows literally anyway) and defuse
    script-scheme links. Code is left alone only where the renderer surely
    sees code too; anywhere in doubt we escape (at worst ``&lt;`` shows in
    code), since text we take for code but Markdown does not would run.
    """
    lines = text.splitlines(keepends=True)
    pieces, prose, i = [], [], 0
    while i < len(lines):
        if not _FENCE_ISH.match(lines[i]):
            prose.append(lines[i])
            i += 1
            continue
        end = _fence_end(lines, i)
        if end is None:  # a fence we cannot place for sure: escape all that follows
            prose.extend(lines[i:])
            break
        pieces += [_escape_prose("".join(prose)), "".join(lines[i:end])]
        prose, i = [], end
    pieces.append(_escape_prose("".join(prose)))
    return "".join(pieces)


def _fence_end(lines, start: int):
    """Index after the fence opened at ``lines[start]``, if it is surely a fence.

    The opener is indented ``k`` spaces: at top level, or in a list item whose
    content starts at ``k`` or before. Content lines indented at least ``k``
    (and a closer too) keep it a fence either way; one indented less may end
    the list item, and with it the fence, so we are no longer sure.
    """
    opener = _OPENER.fullmatch(lines[start].rstrip("\r\n"))
    if opener is None or (opener.group(2)[0] == "`" and "`" in opener.group(3)):
        return None
    indent, fence = len(opener.group(1)), opener.group(2)
    closer = re.compile(rf"( {{0,3}}){re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
    for j in range(start + 1, len(lines)):
        line = lines[j].rstrip("\r\n")
        if line.strip() and _indent(line) < indent:
            return None
        if closer.fullmatch(line):
            return j + 1
    return len(lines)


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip(" "))


def _escape_prose(text: str) -> str:
    out, last = [], 0
    for match in _CODE_SPAN.finditer(text):
        out.append(_escape_html(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_escape_html(text[last:]))
    return "".join(out)


def _escape_html(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return _SCRIPT_LINK.sub(r"\1\2#unsafe-link", text)
