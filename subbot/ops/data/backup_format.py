"""The backup file format's shared pieces: version, manifest, errors, sidecar name (see subbot.ops.backup)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from subbot.ops.data.common import DataToolError

FORMAT_VERSION = 1
SUFFIX = ".jsonl.gz"


class BackupError(DataToolError):
    """The backup file is damaged, truncated, or not a subbot backup: nothing was changed."""


@dataclass
class TableInfo:
    name: str
    columns: list[tuple[str, str]]  # (name, kind)
    rows: int = 0
    sha256: str = ""


@dataclass
class Manifest:
    format_version: int
    schema_revision: str | None
    created_at: str
    backend: str
    tables: dict[str, TableInfo] = field(default_factory=dict)
    content_sha256: str = ""
    file_sha256: str | None = None  # from the sidecar, when there is one

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def json_line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
