"""Reading a backup once, checking every checksum as it goes (format: subbot.ops.backup)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from subbot.ops.data.backup_format import FORMAT_VERSION, BackupError, Manifest, TableInfo, sidecar
from subbot.ops.data.common import Progress


@dataclass
class Section:
    """One table of a backup being read: its columns, then batches of raw row lines."""

    name: str
    columns: list[tuple[str, str]]
    batches: Iterator[list[bytes]]


class BackupReader:
    """Reads a backup once, checking every checksum as it goes; raises :class:`BackupError` on damage.

    Iterate :meth:`sections` (consume each section's batches in order); the trailer is checked when the
    last section has been read, so a consumer must not commit anything before the iteration ends.
    """

    def __init__(self, path: Path, batch: int = 1000) -> None:
        self.path = path
        self.batch = batch
        self.header: dict[str, Any] = {}
        self.manifest: Manifest | None = None

    def _damaged(self, why: str) -> BackupError:
        return BackupError(f"backup {self.path} is damaged or truncated ({why}); nothing was changed")

    def _lines(self) -> Iterator[bytes]:
        try:
            with gzip.open(self.path, "rb") as gz, io.BufferedReader(gz, 1 << 20) as fh:
                yield from fh
        except FileNotFoundError:
            raise BackupError(f"backup file {self.path} does not exist") from None
        except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
            raise self._damaged(str(exc) or exc.__class__.__name__) from None

    def _json(self, line: bytes) -> Any:
        try:
            return json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise self._damaged("a line is not valid JSON") from None

    def sections(self) -> Iterator[Section]:
        lines = self._lines()
        content = hashlib.sha256()
        first = next(lines, None)
        if first is None:
            raise self._damaged("empty file")
        header = self._json(first)
        if not isinstance(header, dict) or "subbot_backup" not in header:
            raise BackupError(f"{self.path} is not a subbot backup (no header)")
        if header["subbot_backup"] != FORMAT_VERSION:
            raise BackupError(f"{self.path}: unsupported backup format {header['subbot_backup']!r}")
        self.header = header
        content.update(first)
        seen: dict[str, TableInfo] = {}
        pending: bytes | None = None
        while True:
            line = pending if pending is not None else next(lines, None)
            pending = None
            if line is None:
                raise self._damaged("the manifest trailer is missing")
            obj = self._json(line)
            if not isinstance(obj, dict):
                raise self._damaged("a row outside a table section")
            if "manifest" in obj:
                self._check_trailer(obj["manifest"], seen, content.hexdigest())
                if next(lines, None) is not None:
                    raise self._damaged("data after the manifest")
                return
            if "table" not in obj:
                raise self._damaged("unexpected line between tables")
            content.update(line)
            try:
                info = TableInfo(str(obj["table"]), [(str(n), str(k)) for n, k in obj["columns"]])
            except (KeyError, TypeError, ValueError):
                raise self._damaged("a table section without a valid column list") from None
            if info.name in seen:
                raise self._damaged(f"table {info.name} appears twice")
            seen[info.name] = info
            digest = hashlib.sha256()
            end: dict[str, Any] = {}

            def rows(
                info: TableInfo = info, digest: Any = digest, end: dict[str, Any] = end
            ) -> Iterator[list[bytes]]:
                chunk: list[bytes] = []

                def take(chunk: list[bytes]) -> list[bytes]:  # hash a whole batch at once
                    data = b"".join(chunk)
                    content.update(data)
                    digest.update(data)
                    info.rows += len(chunk)
                    return chunk

                for raw in lines:
                    if raw[:1] != b"[":
                        if chunk:
                            yield take(chunk)
                            chunk = []
                        content.update(raw)
                        closing = self._json(raw)
                        if not isinstance(closing, dict) or "end" not in closing:
                            raise self._damaged(f"table {info.name} is not closed properly")
                        end.update(closing)
                        break
                    chunk.append(raw)
                    if len(chunk) >= self.batch:
                        yield take(chunk)
                        chunk = []
                else:
                    raise self._damaged(f"table {info.name} is cut short")

            yield Section(info.name, info.columns, rows())
            if not end:  # the consumer did not read the rows: skip them, still checking them
                for _ in rows():
                    pass
            info.sha256 = digest.hexdigest()
            if (
                end.get("end") != info.name
                or end.get("rows") != info.rows
                or end.get("sha256") != info.sha256
            ):
                raise self._damaged(f"checksum or row count mismatch in table {info.name}")

    def _check_trailer(self, trailer: Any, seen: dict[str, TableInfo], content_sha: str) -> None:
        if not isinstance(trailer, dict) or trailer.get("content_sha256") != content_sha:
            raise self._damaged("content checksum mismatch")
        listed = trailer.get("tables") or {}
        if set(listed) != set(seen):
            raise self._damaged("the manifest lists other tables than the file holds")
        for name, info in seen.items():
            if listed[name] != {"rows": info.rows, "sha256": info.sha256}:
                raise self._damaged(f"manifest mismatch for table {name}")
        self.manifest = Manifest(
            int(trailer.get("format_version", 0)),
            trailer.get("schema_revision"),
            str(trailer.get("created_at", "")),
            str(trailer.get("backend", "")),
            seen,
            content_sha,
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_backup(path: Path, progress: Progress | None = None) -> Manifest:
    """Check the sidecar (when present), every table checksum and the manifest; return the manifest."""
    if not path.is_file():
        raise BackupError(f"backup file {path} does not exist")
    side = sidecar(path)
    recorded: str | None = None
    if side.is_file():
        recorded = side.read_text(encoding="utf-8").split(maxsplit=1)[0] if side.stat().st_size else ""
        if recorded != file_sha256(path):
            raise BackupError(
                f"backup {path} is damaged or truncated (its sha256 differs from {side.name}); "
                "nothing was changed"
            )
    reader = BackupReader(path)
    for section in reader.sections():
        done = 0
        total = (reader.header.get("rows") or {}).get(section.name)
        for chunk in section.batches:
            done += len(chunk)
            if progress:
                progress(f"verify {section.name}", done, total)
    assert reader.manifest is not None
    reader.manifest.file_sha256 = recorded
    return reader.manifest
