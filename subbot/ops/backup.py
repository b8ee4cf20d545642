"""Consistent, streamed, compressed backups of every table, with a manifest and checksums.

File format (``.jsonl.gz``: gzip of UTF-8 JSON lines, version 1)::

    {"subbot_backup": 1, "schema_revision": ..., "created_at": ..., "backend": ..., "tables": [...],
     "rows": {table: n}}                                      header
    {"table": "users", "columns": [["id", "int"], ...]}       one section per table, FK order
    [1001, "alice", ...]                                      one JSON array per row, column order
    {"end": "users", "rows": 2, "sha256": "..."}              sha256 of that table's row lines
    ...
    {"manifest": {... "tables": {name: {"rows", "sha256"}}, "content_sha256": "..."}}   trailer

``content_sha256`` covers every line before the trailer; the sidecar ``<file>.sha256`` (``sha256sum``
format) holds the checksum of the compressed file itself. Values use :mod:`subbot.ops.data.codec`.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Table

from subbot.ops.data.backup_format import (
    FORMAT_VERSION,
    SUFFIX,
    BackupError,
    Manifest,
    TableInfo,
    json_line,
    sidecar,
)
from subbot.ops.data.backup_reader import BackupReader, verify_backup
from subbot.ops.data.codec import column_kind
from subbot.ops.data.common import (
    Progress,
    count_rows,
    existing_tables,
    fsync_replace,
    revision_of,
    snapshot,
    unique_path,
    utc_stamp,
)
from subbot.ops.data.fastio import stream_encoded
from subbot.store.db import Database

BATCH = 5000
__all__ = [
    "FORMAT_VERSION",
    "BackupError",
    "BackupReader",
    "BackupWriter",
    "Manifest",
    "TableInfo",
    "backup_database",
    "default_backup_path",
    "sidecar",
    "verify_backup",
]


def default_backup_path(directory: Path = Path("backups"), prefix: str = "subbot") -> Path:
    return unique_path(directory, f"{prefix}-{utc_stamp()}", SUFFIX)


class _Hashing:
    """A write-only file wrapper hashing what goes through it (the compressed bytes)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class BackupWriter:
    """Writes the format above; also used by tests to craft files. Call ``close()`` to finish."""

    def __init__(
        self, path: Path, *, revision: str | None, backend: str, expected: dict[str, int], level: int = 5
    ) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._raw = open(self.tmp, "wb")
        self._hashing = _Hashing(self._raw)
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._hashing, compresslevel=level, mtime=0)
        self._content = hashlib.sha256()
        self.manifest = Manifest(FORMAT_VERSION, revision, datetime.now(UTC).isoformat(), backend)
        self._current: tuple[TableInfo, Any] | None = None
        self._put(
            json_line(
                {
                    "subbot_backup": FORMAT_VERSION,
                    "schema_revision": revision,
                    "created_at": self.manifest.created_at,
                    "backend": backend,
                    "tables": list(expected),
                    "rows": expected,
                }
            )
        )

    def _put(self, data: bytes) -> None:
        self._content.update(data)
        self._gz.write(data)

    def begin_table(self, name: str, columns: Sequence[tuple[str, str]]) -> None:
        info = TableInfo(name, list(columns))
        self.manifest.tables[name] = info
        self._current = (info, hashlib.sha256())
        self._put(json_line({"table": name, "columns": [list(c) for c in columns]}))

    def write_lines(self, lines: list[bytes]) -> None:
        assert self._current is not None
        info, digest = self._current
        data = b"".join(lines)
        digest.update(data)
        info.rows += len(lines)
        self._put(data)

    def end_table(self) -> None:
        assert self._current is not None
        info, digest = self._current
        info.sha256 = digest.hexdigest()
        self._put(json_line({"end": info.name, "rows": info.rows, "sha256": info.sha256}))
        self._current = None

    def close(self) -> Manifest:
        self.manifest.content_sha256 = self._content.hexdigest()
        trailer = {
            "format_version": FORMAT_VERSION,
            "schema_revision": self.manifest.schema_revision,
            "created_at": self.manifest.created_at,
            "backend": self.manifest.backend,
            "tables": {n: {"rows": t.rows, "sha256": t.sha256} for n, t in self.manifest.tables.items()},
            "content_sha256": self.manifest.content_sha256,
        }
        self._gz.write(json_line({"manifest": trailer}))
        self._gz.close()
        self._raw.close()
        fsync_replace(self.tmp, self.path)
        self.manifest.file_sha256 = self._hashing.hash.hexdigest()
        sidecar(self.path).write_text(f"{self.manifest.file_sha256}  {self.path.name}\n", encoding="utf-8")
        return self.manifest

    def abort(self) -> None:
        try:
            self._gz.close()
        finally:
            self._raw.close()
            self.tmp.unlink(missing_ok=True)


def table_columns(table: Table) -> list[tuple[str, str]]:
    return [(c.name, column_kind(c)) for c in table.columns]


async def backup_database(
    db: Database, path: Path, *, progress: Progress | None = None, batch: int = BATCH
) -> Manifest:
    """Dump every table inside one consistent snapshot, streaming ``batch`` rows at a time."""
    async with snapshot(db) as conn:
        revision = await revision_of(conn)
        all_tables = await existing_tables(conn)  # a database behind this code lacks the newest tables
        expected = {t.name: await count_rows(conn, t) for t in all_tables}
        writer = BackupWriter(path, revision=revision, backend=db.dialect, expected=expected)
        try:
            for table in all_tables:
                columns = table_columns(table)
                writer.begin_table(table.name, columns)
                done = 0
                if progress:
                    progress(table.name, 0, expected[table.name])
                async for lines in stream_encoded(conn, table, [kind for _, kind in columns], batch):
                    writer.write_lines(lines)
                    done += len(lines)
                    if progress:
                        progress(table.name, done, expected[table.name])
                writer.end_table()
        except BaseException:
            writer.abort()
            raise
    return writer.close()
