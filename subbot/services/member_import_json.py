"""Reading JSON: the streaming walker that keeps line numbers, JSON lists of people and the Telegram
Desktop chat export (``result.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from subbot.services.member_import_model import (
    LEFT,
    MISSING,
    Candidate,
    ImportFileError,
    Problem,
    Source,
    _username,
    check_id,
    clean_text,
)


# --------------------------------------------------------------------------------------------- JSON
class _Json:
    """Walks a JSON text decoding one array element at a time, so every row keeps its line number."""

    _WS = re.compile(r"[ \t\n\r]*")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.decoder = json.JSONDecoder()
        self._line_pos = 0
        self._line = 1

    def line_at(self, pos: int) -> int:
        if pos >= self._line_pos:
            self._line += self.text.count("\n", self._line_pos, pos)
        else:
            self._line = self.text.count("\n", 0, pos) + 1
        self._line_pos = pos
        return self._line

    def _ws(self) -> None:
        match = self._WS.match(self.text, self.pos)
        self.pos = match.end() if match else self.pos

    def peek(self) -> str:
        self._ws()
        return self.text[self.pos : self.pos + 1]

    def _expect(self, char: str) -> None:
        if self.peek() != char:
            raise self._error(f"expected {char!r}")
        self.pos += 1

    def _error(self, what: str) -> json.JSONDecodeError:
        return json.JSONDecodeError(what, self.text, self.pos)

    def value(self) -> Any:
        self._ws()
        obj, self.pos = self.decoder.raw_decode(self.text, self.pos)
        return obj

    def array(self) -> Iterator[int]:
        """Yields each element's start; the caller must consume the element (``value`` or a walk)."""
        self._expect("[")
        if self.peek() == "]":
            self.pos += 1
            return
        while True:
            self._ws()
            yield self.pos
            nxt = self.peek()
            self.pos += 1
            if nxt == "]":
                return
            if nxt != ",":
                raise self._error("expected ',' or ']'")

    def object(self) -> Iterator[str]:
        """Yields each key; the caller must consume its value."""
        self._expect("{")
        if self.peek() == "}":
            self.pos += 1
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise self._error("expected a key")
            self._expect(":")
            yield key
            nxt = self.peek()
            self.pos += 1
            if nxt == "}":
                return
            if nxt != ",":
                raise self._error("expected ',' or '}'")


def _json_source(path: Path, encoding: str) -> Source:
    try:
        text = path.read_text(encoding=encoding, errors="replace")
    except (OSError, MemoryError) as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc})") from None
    walker = _Json(text)
    rows: list[Candidate | Problem] = []
    notes: list[str] = []
    records = 0
    fmt = "JSON list"
    try:
        if walker.peek() == "[":
            records = _json_people(walker, rows)
        else:
            found = False
            chat_type = ""
            for key in walker.object():
                if key == "messages":
                    records, people = _export_people(walker, rows, notes)
                    fmt, found = "Telegram Desktop export", True
                    notes.insert(0, f"{records} messages scanned, {people} people found in them")
                elif key in ("members", "users", "participants", "list"):
                    records += _json_people(walker, rows)
                    fmt, found = f'JSON "{key}" list', True
                elif key == "contacts" and walker.peek() == "{":
                    for inner in walker.object():
                        if inner == "list":
                            records += _json_people(walker, rows)
                            fmt, found = "JSON contacts list", True
                        else:
                            walker.value()
                elif key == "type":
                    chat_type = str(walker.value())
                else:
                    walker.value()
            if walker.peek():
                raise walker._error("extra data after the document")
            if not found:
                raise ImportFileError(
                    f"{path}: JSON without 'messages' (a Telegram Desktop chat export), 'members' or "
                    "'contacts'; nothing to import"
                )
            if chat_type and chat_type not in (
                "private_group",
                "private_supergroup",
                "public_supergroup",
                "public_group",
            ):
                notes.append(f"the export is of a {chat_type!r} chat, not a group")
    except json.JSONDecodeError as exc:
        raise ImportFileError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    done = 0

    def iterate() -> Iterator[Candidate | Problem]:
        nonlocal done
        for row in rows:
            done += 1
            yield row

    return Source(path, fmt, iterate(), len(rows), lambda: done, lambda: records, notes)


def _json_people(walker: _Json, out: list[Candidate | Problem]) -> int:
    count = 0
    for start in walker.array():
        item = walker.value()
        line = walker.line_at(start)
        count += 1
        if isinstance(item, dict):
            raw = item.get("user_id", item.get("id", item.get("userId")))
            first = item.get("first_name", item.get("name", ""))
            username = item.get("username")
            out.append(
                Candidate(
                    line,
                    raw,
                    clean_text(first, 256),
                    clean_text(item.get("last_name"), 256) or None,
                    _username(username),
                )
            )
        elif isinstance(item, int | str):
            out.append(Candidate(line, item))
        else:
            out.append(Problem(line, MISSING, clean_text(json.dumps(item), 60)))
    return count


def _export_people(walker: _Json, out: list[Candidate | Problem], notes: list[str]) -> tuple[int, int]:
    """Distinct people of a chat export, from who wrote (``from_id``) and who acted (``actor_id``).

    Messages are in time order, so the last word on each person wins: a leave (a removal whose actor is
    the member) or a removal by an admin (names only, matched when the name belongs to exactly one known
    person) marks them gone; writing or being invited again brings them back.
    """
    first_line: dict[int, int] = {}
    names: dict[int, str] = {}
    by_name: dict[str, set[int]] = {}
    present: dict[int, bool] = {}
    bad: dict[str, int] = {}
    unresolved: set[str] = set()
    channels = 0
    messages = 0

    def named(member: object, value: bool) -> None:
        name = clean_text(member, 256)
        ids = by_name.get(name, set())
        if len(ids) == 1:
            present[next(iter(ids))] = value
        elif name:
            unresolved.add(name)

    for start in walker.array():
        msg = walker.value()
        messages += 1
        if not isinstance(msg, dict):
            continue
        line = walker.line_at(start)
        for id_key, name_key in (("from_id", "from"), ("actor_id", "actor")):
            raw = msg.get(id_key)
            if not isinstance(raw, str):
                continue
            if not raw.startswith("user"):
                channels += raw.startswith(("channel", "chat"))
                continue
            checked = check_id(raw)
            if isinstance(checked, str):
                bad.setdefault(raw, line)
                continue
            first_line.setdefault(checked, line)
            name = clean_text(msg.get(name_key), 256)
            if name:
                names[checked] = name
                by_name.setdefault(name, set()).add(checked)
            present[checked] = True
            if msg.get("type") != "service":
                continue
            listed = msg.get("members")
            members: list[Any] = listed if isinstance(listed, list) else []
            action = msg.get("action")
            if action == "remove_members":
                for member in members:
                    if name and clean_text(member, 256) == name:
                        present[checked] = False  # left by themselves
                    else:
                        named(member, False)
            elif action == "invite_members":
                for member in members:
                    named(member, True)
    for raw, line in bad.items():
        out.append(Problem(line, str(check_id(raw)), raw))
    for user_id, line in sorted(first_line.items(), key=lambda kv: kv[1]):
        if present.get(user_id, True):
            out.append(Candidate(line, user_id, names.get(user_id, "")))
        else:
            out.append(Problem(line, LEFT, f"{user_id} {names.get(user_id, '')}".strip()))
    unresolved -= set(names.values())
    if channels:
        notes.append(f"{channels} message(s) sent as a channel or chat ignored")
    if unresolved:
        notes.append(
            f"{len(unresolved)} person(s) named in add/remove service messages never wrote, so the export "
            "has no id for them: add them by id (CSV or plain list), or they can join with an invite"
        )
    return messages, len(first_line)
