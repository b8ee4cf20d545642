"""MarkdownV2 and legacy Markdown parsing (see :mod:`.markup` for HTML and the common parts)."""

from __future__ import annotations

import re

from .markup import Entity, Out, ParseError, byte_offset

MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MD_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "code": "Code",
    "pre": "Pre",
}


def parse_markdown_v2(src: str) -> tuple[str, list[Entity]]:
    out = Out()
    stack: list[tuple[str, int, int]] = []  # (kind, start, byte offset)
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch == "\\" and i + 1 < n and 0 < ord(src[i + 1]) < 127:
            out.add(src[i + 1])
            i += 2
            continue
        if ch == "\\":
            raise ParseError("Character '\\' is reserved and must be escaped with the preceding '\\'")
        if stack and stack[-1][0] in ("code", "pre"):
            code_kind = stack[-1][0]
            if code_kind == "pre" and src.startswith("```", i):
                _md_close(out, stack, "pre")
                i += 3
            elif code_kind == "code" and ch == "`":
                _md_close(out, stack, "code")
                i += 1
            else:
                out.add(ch)
                i += 1
            continue
        if ch == ">" and (i == 0 or src[i - 1] == "\n"):
            if not any(s[0] == "blockquote" for s in stack):
                stack.append(("blockquote", out.length, byte_offset(src, i)))
            i += 1
            continue
        if ch == "\n" and stack and stack[-1][0] == "blockquote" and not src.startswith(">", i + 1):
            _md_close(out, stack, "blockquote")
        tok, kind = _md_tok(src, i)
        if kind is None:
            if ch in MDV2_RESERVED:
                raise ParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")
            out.add(ch)
            i += 1
            continue
        if kind == "pre":
            nl = src.find("\n", i + 3)
            lang = src[i + 3 : nl].strip() if nl != -1 else ""
            stack.append(("pre", out.length, byte_offset(src, i)))
            i = nl + 1 if nl != -1 and lang and " " not in lang else i + 3
            continue
        if kind == "text_link" and tok == "]":
            if not any(s[0] == "text_link" for s in stack) or not src.startswith("(", i + 1):
                raise ParseError("Character ']' is reserved and must be escaped with the preceding '\\'")
            end = i + 2
            while end < n and src[end] != ")":
                end += 2 if src[end] == "\\" else 1
            if end >= n:
                raise ParseError(f"Can't find end of a URL at byte offset {byte_offset(src, i)}")
            url = re.sub(r"\\(.)", r"\1", src[i + 2 : end])
            _md_close(out, stack, "text_link", url=url)
            i = end + 1
            continue
        if kind == "text_link" or not any(s[0] == kind for s in stack):
            stack.append((kind, out.length, byte_offset(src, i)))
        else:
            _md_close(out, stack, kind)
        i += len(tok)
    if stack and stack[-1][0] == "blockquote":
        _md_close(out, stack, "blockquote")
    if stack:
        kind, _, offset = stack[-1]
        raise ParseError(f"Can't find end of {_MD_NAMES.get(kind, kind)} entity at byte offset {offset}")
    return out.result()


def _md_tok(src: str, i: int) -> tuple[str, str | None]:
    if src.startswith("```", i):
        return "```", "pre"
    if src.startswith("||", i):
        return "||", "spoiler"
    if src.startswith("__", i):
        return "__", "underline"
    simple = {
        "*": "bold",
        "_": "italic",
        "~": "strikethrough",
        "`": "code",
        "[": "text_link",
        "]": "text_link",
    }
    ch = src[i]
    if ch in simple:
        return ch, simple[ch]
    return ch, None


def _md_close(out: Out, stack: list[tuple[str, int, int]], kind: str, url: str | None = None) -> None:
    for idx in range(len(stack) - 1, -1, -1):
        if stack[idx][0] == kind:
            _, start, _ = stack.pop(idx)
            out.entity(kind, start, url=url)
            return


def parse_markdown(src: str) -> tuple[str, list[Entity]]:
    """Legacy Markdown: *bold*, _italic_, `code`, ```pre```, [text](url)."""
    out = Out()
    i, n = 0, len(src)
    pairs = {"*": "bold", "_": "italic", "`": "code"}
    while i < n:
        ch = src[i]
        if ch == "\\" and i + 1 < n and src[i + 1] in "_*`[":
            out.add(src[i + 1])
            i += 2
        elif src.startswith("```", i) or ch in pairs:
            tok = "```" if src.startswith("```", i) else ch
            end = src.find(tok, i + len(tok))
            if end == -1:
                raise ParseError(
                    f"Can't find end of the entity starting at byte offset {byte_offset(src, i)}"
                )
            start = out.length
            out.add(src[i + len(tok) : end])
            out.entity("pre" if tok == "```" else pairs[tok], start)
            i = end + len(tok)
        elif ch == "[":
            m = re.compile(r"\[([^\]]*)\]\(([^)]*)\)").match(src, i)
            if m is None:
                raise ParseError(
                    f"Can't find end of the entity starting at byte offset {byte_offset(src, i)}"
                )
            start = out.length
            out.add(m.group(1))
            out.entity("text_link", start, url=m.group(2))
            i = m.end()
        else:
            out.add(ch)
            i += 1
    return out.result()
