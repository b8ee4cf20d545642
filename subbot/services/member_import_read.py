"""Reading the file: recognise its format by content, then stream a CSV or a plain list of ids row by
row (JSON is read whole, in ``member_import_json``).
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from subbot.services.member_import_json import _json_source
from subbot.services.member_import_model import (
    _DIGITS,
    MAX_JSON_BYTES,
    Candidate,
    ImportFileError,
    Problem,
    Source,
    _username,
    clean_text,
)

_ID_HEADERS = ("user_id", "userid", "telegram_id", "tg_id", "id")
_HEADER_ALIASES = {
    "username": ("username", "user_name", "handle", "login"),
    "first_name": ("first_name", "firstname", "name", "display_name", "full_name"),
    "last_name": ("last_name", "lastname", "surname", "family_name"),
}
_DELIMITERS = (",", ";", "\t", "|")


# ------------------------------------------------------------------------------------------ reading
def open_source(path: Path, max_json_bytes: int = MAX_JSON_BYTES) -> Source:
    """Recognise the file by its content; raises ImportFileError when it cannot be read at all."""
    try:
        if not path.is_file():
            raise ImportFileError(f"{path}: no such file")
        size = path.stat().st_size
        with path.open("rb") as raw:
            head = raw.read(64 * 1024)
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    encoding = "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in head:
        raise ImportFileError(f"{path}: a binary file, not JSON, CSV or a list of ids")
    text = codecs.decode(head, encoding, errors="replace") if head else ""
    text = text.lstrip("\ufeff")
    start = text.lstrip()[:1]
    if start in ("{", "["):
        if size > max_json_bytes:
            raise ImportFileError(
                f"{path}: a {size / 1048576:.0f} MB JSON file; JSON is read whole and the limit is "
                f"{max_json_bytes / 1048576:.0f} MB. Convert it to CSV or a list of ids (those stream)."
            )
        return _json_source(path, encoding)
    if start == "<":
        raise ImportFileError(
            f"{path}: looks like HTML; export the chat from Telegram Desktop as 'Machine-readable JSON'"
        )
    first = _first_meaningful_line(text)
    if first is not None:
        header = _csv_header(first)
        if header is not None:
            return _csv_source(path, encoding, size)
        token = first.split("#", 1)[0].strip()
        if any(d in token for d in _DELIMITERS) and not _DIGITS.fullmatch(token):
            raise ImportFileError(
                f"{path}: not a format we know: a CSV needs a header row with a user_id or id column, "
                "a plain list has one numeric id per line"
            )
    return _plain_source(path, encoding, size)


def _first_meaningful_line(text: str) -> str | None:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped
    return None


def _normal(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().strip("\"'").lower())


def _csv_header(line: str) -> tuple[str, dict[str, int]] | None:
    """(delimiter, column index by field) when ``line`` is a header naming an id column."""
    best: tuple[str, dict[str, int]] | None = None
    best_width = 0
    for delimiter in _DELIMITERS:
        cells = [_normal(c) for c in next(csv.reader([line], delimiter=delimiter))]
        id_col = next((cells.index(h) for h in _ID_HEADERS if h in cells), None)
        if id_col is None or len(cells) <= best_width:
            continue
        columns = {"id": id_col}
        for key, aliases in _HEADER_ALIASES.items():
            col = next((cells.index(a) for a in aliases if a in cells), None)
            if col is not None:
                columns[key] = col
        best, best_width = (delimiter, columns), len(cells)
    return best


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines + 1


class _Progress:
    def __init__(self) -> None:
        self.line = 0
        self.records = 0


def _csv_source(path: Path, encoding: str, size: int) -> Source:
    state = _Progress()

    def rows() -> Iterator[Candidate | Problem]:
        with path.open(encoding=encoding, errors="replace", newline="") as stream:
            header = _read_header(stream, state)
            if header is None:
                return
            delimiter, cols = header
            reader = csv.reader(stream, delimiter=delimiter)
            offset = state.line
            while True:
                start = offset + reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    state.line = offset + reader.line_num
                    state.records += 1
                    yield Problem(start, "unreadable CSV row", str(exc)[:80])
                    continue
                state.line = offset + reader.line_num
                if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                    continue
                state.records += 1

                def cell(key: str, row: list[str] = row) -> str | None:
                    i = cols.get(key)
                    return row[i] if i is not None and i < len(row) else None

                yield Candidate(
                    start,
                    cell("id"),
                    clean_text(cell("first_name"), 256),
                    clean_text(cell("last_name"), 256) or None,
                    _username(cell("username")),
                )

    return Source(
        path, "CSV", rows(), _count_lines(path) if size else 0, lambda: state.line, lambda: state.records
    )


def _read_header(stream: TextIO, state: _Progress) -> tuple[str, dict[str, int]] | None:
    while line := stream.readline():
        state.line += 1
        stripped = line.strip().lstrip("\ufeff")
        if stripped and not stripped.startswith("#"):
            return _csv_header(stripped)
    return None


def _plain_source(path: Path, encoding: str, size: int) -> Source:
    state = _Progress()

    def rows() -> Iterator[Candidate | Problem]:
        with path.open(encoding=encoding, errors="replace") as stream:
            for number, line in enumerate(stream, 1):
                state.line = number
                value = line.split("#", 1)[0].strip().lstrip("\ufeff")
                if not value:
                    continue
                state.records += 1
                yield Candidate(number, value)

    return Source(
        path,
        "plain list of ids",
        rows(),
        _count_lines(path) if size else 0,
        lambda: state.line,
        lambda: state.records,
    )
