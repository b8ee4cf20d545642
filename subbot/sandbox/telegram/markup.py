"""Telegram text formatting: HTML / MarkdownV2 / Markdown parsing into (text, entities).

Errors are raised as :class:`ParseError` whose text follows Telegram's
``can't parse entities: ...`` wording (the caller adds the prefix).
"""

from __future__ import annotations

import re
from typing import Any

Entity = dict[str, Any]

HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'", "nbsp": "\u00a0"}
_TAG_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^>]*)?)\s*/?>")
_ATTR_RE = re.compile(r"""([a-zA-Z_-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_ENT_RE = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);")


class ParseError(ValueError):
    pass


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def byte_offset(src: str, pos: int) -> int:
    return len(src[:pos].encode("utf-8"))


def parse(text: str, mode: str | None) -> tuple[str, list[Entity]]:
    """Return the plain text and its entities; ``mode`` is parse_mode (case-insensitive)."""
    if not mode:
        return text, []
    m = mode.lower()
    if m == "html":
        return parse_html(text)
    if m in ("markdownv2", "markdown"):
        from .markdown import parse_markdown, parse_markdown_v2

        return parse_markdown_v2(text) if m == "markdownv2" else parse_markdown(text)
    raise ParseError(f"Unsupported parse_mode {mode!r}")


class Out:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0  # in UTF-16 code units
        self.entities: list[Entity] = []

    def add(self, s: str) -> None:
        self.parts.append(s)
        self.length += utf16_len(s)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.length > start:
            ent: Entity = {"type": kind, "offset": start, "length": self.length - start}
            ent.update({k: v for k, v in extra.items() if v is not None})
            self.entities.append(ent)

    def result(self) -> tuple[str, list[Entity]]:
        return "".join(self.parts), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))


def parse_html(src: str) -> tuple[str, list[Entity]]:
    out = Out()
    stack: list[tuple[str, int, dict[str, str]]] = []
    i = 0
    while i < len(src):
        ch = src[i]
        if ch == "<":
            m = _TAG_RE.match(src, i)
            if m is None:
                raise ParseError(f'Unsupported start tag "" at byte offset {byte_offset(src, i)}')
            closing, name, attr_text = m.group(1) == "/", m.group(2).lower(), m.group(3)
            if closing:
                if not stack:
                    raise ParseError(f"Unexpected end tag at byte offset {byte_offset(src, i)}")
                top, start, attrs = stack.pop()
                if top != name:
                    raise ParseError(
                        f"Unmatched end tag at byte offset {byte_offset(src, i)}, "
                        f'expected "</{top}>", found "</{name}>"'
                    )
                _close_html(out, top, start, attrs, stack)
            else:
                if name not in HTML_TAGS:
                    raise ParseError(f'Unsupported start tag "{name}" at byte offset {byte_offset(src, i)}')
                attrs = {
                    a.group(1).lower(): a.group(2) or a.group(3) or a.group(4) or ""
                    for a in _ATTR_RE.finditer(attr_text)
                }
                if re.search(r"\bexpandable\b", attr_text):
                    attrs.setdefault("expandable", "")
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise ParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(src, i)}'
                    )
                stack.append((name, out.length, attrs))
            i = m.end()
        elif ch == "&":
            m = _ENT_RE.match(src, i)
            decoded = _decode_entity(m.group(1)) if m else None
            if m is None or decoded is None:
                out.add("&")
                i += 1
            else:
                out.add(decoded)
                i = m.end()
        else:
            j = i
            while j < len(src) and src[j] not in "<&":
                j += 1
            out.add(src[i:j])
            i = j
    if stack:
        raise ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _close_html(out: Out, tag: str, start: int, attrs: dict[str, str], stack: list[Any]) -> None:
    kind = HTML_TAGS[tag]
    if kind == "text_link":
        href = attrs.get("href", "")
        if href:
            out.entity("text_link", start, url=href)
    elif kind == "code" and stack and stack[-1][0] == "pre":
        lang = attrs.get("class", "")
        if lang.startswith("language-"):
            stack[-1][2]["language"] = lang[len("language-") :]
        else:
            out.entity("code", start)
    elif kind == "pre":
        out.entity("pre", start, language=attrs.get("language"))
    elif kind == "blockquote":
        out.entity("expandable_blockquote" if "expandable" in attrs else "blockquote", start)
    elif kind == "custom_emoji":
        out.entity("custom_emoji", start, custom_emoji_id=attrs.get("emoji-id"))
    else:
        out.entity(kind, start)


def _decode_entity(name: str) -> str | None:
    if name.startswith("#x"):
        return chr(int(name[2:], 16))
    if name.startswith("#"):
        return chr(int(name[1:]))
    return HTML_ENTITIES.get(name.lower())


def command_entities(text: str) -> list[Entity]:
    """Entities Telegram adds to a user's message: a leading /command (with optional @bot)."""
    m = re.match(r"/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]{3,64})?", text)
    if m is None:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(m.group(0))}]
