"""Incident rules without a database: configuration of the escalation matrix and cadence, the lifecycle's
decisions, and both message formats with hostile input (Telegram's parse, as the sandbox does it)."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest

from subbot.config import ConfigError, load_settings
from subbot.ops.incidents import lifecycle
from subbot.ops.incidents.model import IncidentError, clean_title
from subbot.ops.incidents.policy import Channels, IncidentPolicy
from subbot.ops.incidents.templates import render
from subbot.sandbox.telegram.markup import parse_html

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_escalation_matrix_and_cadence_from_the_environment() -> None:
    default = load_settings(_env_file=None)
    assert [(lv.name, lv.after) for lv in default.incident_escalation] == [
        ("On-call engineer", 15),
        ("Technical lead", 30),
        ("Product owner", 60),
        ("Executive team", 120),
    ]
    assert default.incident_update_minutes == {"SEV-1": 15, "SEV-2": 30, "SEV-3": 120}
    custom = load_settings(
        _env_file=None,
        incident_escalation='[{"name": "Ops", "after": 10, "telegram": [42], "slack": ["<@U1>"]},'
        '{"name": "CTO", "after": 45, "severities": ["SEV-1"]}]',
        incident_update_minutes="SEV-1=5 SEV-3=60",
    )
    policy = IncidentPolicy.from_settings(custom)
    assert policy.levels[0].telegram == (42,) and policy.levels[1].severities == ("SEV-1",)
    assert policy.cadence("SEV-1") == timedelta(minutes=5) and policy.cadence("SEV-2") == timedelta(
        minutes=30
    )
    assert policy.due_levels(1, NOW, NOW + timedelta(minutes=44)) == []
    assert policy.due_levels(1, NOW, NOW + timedelta(minutes=45)) == [2]
    for raw, words in (
        ("not json", "must be a JSON list"),
        ("[]", "non-empty JSON list"),
        ('[{"name": "A"}]', "level 1: 'after' must be whole minutes"),
        ('[{"name": "A", "after": 30}, {"name": "B", "after": 10}]', "level 2: 'after'"),
        ('[{"name": "A", "after": 5, "telegram": ["@olga"]}]', "numeric Telegram user or chat ids"),
        ('[{"name": "A", "after": 5, "severities": ["SEV-4"]}]', "SEV-1, SEV-2, SEV-3"),
        ('[{"name": "A", "after": 5}, {"name": "a", "after": 6}]', "names must be different"),
        ('[{"name": "A", "after": 5, "phone": "+1"}]', "unknown key(s) phone"),
    ):
        with pytest.raises(ConfigError, match="INCIDENT_ESCALATION") as bad:
            load_settings(_env_file=None, incident_escalation=raw)
        assert words in str(bad.value), str(bad.value)
    with pytest.raises(ConfigError, match="INCIDENT_UPDATE_MINUTES: minutes must be between 1 and 10080"):
        load_settings(_env_file=None, incident_update_minutes="SEV-2=0")
    with pytest.raises(ConfigError, match="INCIDENT_TELEGRAM_CHAT_ID: must be a negative chat id"):
        load_settings(_env_file=None, incident_telegram_chat_id="42")


def test_titles_are_cleaned_or_refused() -> None:
    assert clean_title("  Database   down  ") == "Database down"
    assert clean_title("Cafe\u0301 <b>menu</b> & 🍰") == "Café <b>menu</b> & 🍰"  # NFC; HTML kept as text
    for bad in ("", "\t", "a\u202eb", "a\u2066b", "a\x1bb", "a\ud800b", "a\ue000b", "x" * 201):
        with pytest.raises(IncidentError):
            clean_title(bad)


def test_lifecycle_decisions() -> None:
    policy = IncidentPolicy(resolve_after=timedelta(minutes=10))
    finding = lifecycle.Finding("database", "SEV-1", True, "unreachable", NOW - timedelta(minutes=2))
    state, change = lifecycle.observe(
        None, lifecycle.Observation(confirmed={"database": finding}), NOW, policy, "m"
    )
    assert state is not None and state.detected_at == NOW - timedelta(minutes=2)
    assert [e.kind for e in change.events] == ["detected", "opened", "paged"]
    quiet = lifecycle.Observation(failing={"database": finding})
    assert not lifecycle.observe(state, quiet, NOW, policy, "m")[1]  # still failing: nothing to say
    healthy = lifecycle.Observation(healthy={"database"})
    assert [e.kind for e in lifecycle.observe(state, healthy, NOW, policy, "m")[1].events] == ["recovered"]
    assert not lifecycle.observe(state, healthy, NOW + timedelta(minutes=9), policy, "m")[1]
    unknown = lifecycle.Observation()  # not checked this pass: neither recovery nor failure
    assert not lifecycle.observe(state, unknown, NOW + timedelta(minutes=10), policy, "m")[1]
    done = lifecycle.observe(state, healthy, NOW + timedelta(minutes=10), policy, "m")[1]
    assert state.status == "resolved" and [n.kind for n in done.notices] == ["resolution"]
    assert not lifecycle.tick(state, NOW + timedelta(days=1), policy, "m")  # resolved: silence
    with pytest.raises(IncidentError, match="cannot be acknowledged"):
        lifecycle.acknowledge(state, actor="x", now=NOW)


def test_every_template_is_valid_telegram_html_and_escaped_slack() -> None:
    policy = IncidentPolicy(channels=Channels(True, -100))
    nasty = "<b>x</b> & <a href='javascript:alert(1)'>y</a> </code> &amp; *_`[]"
    title = clean_title(nasty + " " + "€" * (200 - len(nasty) - 1))
    state, change = lifecycle.open_incident(
        title=title, severity="SEV-1", components=["database"], source="manual", actor="<i>me</i>",
        now=NOW, policy=policy, summary="&lt;not an entity&gt;",
    )  # fmt: skip
    state.id = 12
    later = NOW + timedelta(hours=3)
    long_text = ("<pre>" + "ä" * 600 + "</pre>\n") * 3
    steps = [f"step <{n}>" for n in range(30)]
    change.extend(
        lifecycle.update(state, actor="x", now=NOW, policy=policy, text=long_text, next_steps=steps)
    )
    change.extend(lifecycle.tick(state, later, policy, "system"))
    change.extend(lifecycle.acknowledge(state, actor="<script>", now=later))
    change.extend(lifecycle.resolve(state, actor="x", now=later, fix=long_text, follow_ups=steps))
    kinds = sorted({n.kind for n in change.notices})
    assert kinds == ["ack", "escalation", "initial", "reminder", "resolution", "update"]
    for notice in change.notices:
        rendered = render(notice, state, policy, later, impact=None, actions=[e.text for e in change.events])
        text, entities = parse_html(rendered.telegram)  # raises on anything Telegram would refuse
        assert len(text) < 4096 and {e["type"] for e in entities} <= {"bold", "code"}
        assert title in text  # shown exactly as typed
        assert "<" not in rendered.slack and ">" not in rendered.slack  # no mention configured here
        assert "&lt;b&gt;x&lt;/b&gt; &amp; &lt;a href=" in rendered.slack
        assert html.unescape(rendered.slack).count(nasty) >= 1  # Slack shows it as typed
