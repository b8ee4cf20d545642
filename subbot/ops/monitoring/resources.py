"""Memory of subbot's processes on this machine against the limit (MEMORY_LIMIT_MB or the cgroup's)."""

from __future__ import annotations

import os
from pathlib import Path

from subbot.ops.monitoring.base import CheckResult, Findings, Probe, Severity, Status

WARN = 0.80  # the runbook: memory < 80 % of the limit
HIGH = 0.95
MB = 1024 * 1024
CGROUP = Path("/sys/fs/cgroup")


def own_rss() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _read_int(path: Path) -> int | None:
    try:
        raw = path.read_text().strip()
    except OSError:
        return None
    return int(raw) if raw.isdigit() else None


def cgroup_memory() -> tuple[int | None, int | None]:
    """(usage, limit) in bytes of this container's cgroup (v2, else v1); None where unknown or unlimited."""
    usage, limit = _read_int(CGROUP / "memory.current"), _read_int(CGROUP / "memory.max")
    if usage is None and limit is None:
        usage = _read_int(CGROUP / "memory" / "memory.usage_in_bytes")
        limit = _read_int(CGROUP / "memory" / "memory.limit_in_bytes")
    if limit is not None and limit >= 1 << 60:  # v1 writes "unlimited" as a huge number
        limit = None
    return usage, limit


def subbot_processes() -> dict[int, int]:
    """pid → RSS bytes of `subbot run` / `python -m subbot` processes of this machine (Linux /proc)."""
    found: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if _is_subbot_server(words):
            found[int(entry.name)] = int(statm[1]) * page
    return found


def _is_subbot_server(words: list[str]) -> bool:
    for i, word in enumerate(words):
        name = os.path.basename(word)
        if name == "subbot" and i + 1 < len(words) and words[i + 1] in ("run", "demo"):
            return True
        if (
            word == "-m"
            and i + 2 < len(words)
            and words[i + 1] == "subbot"
            and words[i + 2] in ("run", "demo")
        ):
            return True
    return False


async def check_resources(probe: Probe) -> CheckResult:
    found = Findings("resources")
    own = own_rss()
    servers = subbot_processes()
    rss = sum(servers.values()) if servers else own
    measured = "subbot server" if servers else "the monitor itself (no `subbot run` on this machine)"
    found.details.update(measured=measured, rss_mb=round(rss / MB, 1), pids=sorted(servers))
    env_limit = os.environ.get("MEMORY_LIMIT_MB", "").strip()
    usage, limit, source = rss, None, ""
    if env_limit.isdigit() and int(env_limit) > 0:
        limit, source = int(env_limit) * MB, "MEMORY_LIMIT_MB"
    else:
        cg_usage, cg_limit = cgroup_memory()
        if cg_limit is not None:
            usage, limit, source = (cg_usage if cg_usage is not None else rss), cg_limit, "cgroup memory.max"
    if limit is None:
        return found.result(f"{measured}: {rss / MB:.0f} MB (no memory limit known)")
    share = usage / limit
    found.details.update(limit_mb=round(limit / MB), limit_source=source, used_share=round(share, 3))
    text = f"memory at {share:.0%} of {limit / MB:.0f} MB ({source})"
    if share > HIGH:
        found.add(Status.DEGRADED, Severity.SEV2, text)
    elif share > WARN:
        found.add(Status.DEGRADED, Severity.SEV3, text)
    return found.result(text)
