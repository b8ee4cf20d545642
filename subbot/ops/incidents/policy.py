"""The incident rules from configuration: escalation matrix, update cadence, channels, auto-resolution."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from subbot.config import DEFAULT_ESCALATION, DEFAULT_UPDATE_MINUTES, EscalationLevel, Settings


@dataclass(frozen=True)
class Channels:
    """Where incident messages go: the status channels, and the Telegram status chat's id."""

    slack: bool = False  # a Slack status webhook is configured
    telegram_chat: int | None = None


@dataclass(frozen=True)
class IncidentPolicy:
    levels: tuple[EscalationLevel, ...] = DEFAULT_ESCALATION
    update_minutes: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_UPDATE_MINUTES))
    resolve_after: timedelta | None = timedelta(minutes=15)  # None: the monitor never resolves by itself
    auto_open: bool = True
    channels: Channels = Channels()

    @classmethod
    def from_settings(cls, settings: Settings) -> IncidentPolicy:
        slack = settings.incident_slack_webhook_url or settings.alert_webhook_url
        chat = settings.incident_telegram_chat_id or settings.alert_telegram_chat_id
        minutes = settings.incident_resolve_after_minutes
        return cls(
            levels=tuple(settings.incident_escalation),
            update_minutes=dict(settings.incident_update_minutes),
            resolve_after=timedelta(minutes=minutes) if minutes else None,
            auto_open=settings.incident_auto_open,
            channels=Channels(slack is not None, chat if settings.bot_token is not None else None),
        )

    def cadence(self, severity: str) -> timedelta:
        return timedelta(minutes=self.update_minutes.get(severity, DEFAULT_UPDATE_MINUTES[severity]))

    def level(self, number: int) -> EscalationLevel | None:
        return self.levels[number - 1] if 1 <= number <= len(self.levels) else None

    def ack_within(self) -> timedelta:
        """Level 1 is paged at once; its minutes are the time it has to acknowledge."""
        return timedelta(minutes=self.levels[0].after) if self.levels else timedelta(minutes=15)

    def due_levels(self, current: int, detected_at: datetime, now: datetime) -> list[int]:
        """Levels above ``current`` whose escalate-after time has passed (level 1 is paged on opening)."""
        elapsed = now - detected_at
        return [
            n
            for n in range(max(current, 1) + 1, len(self.levels) + 1)
            if elapsed >= timedelta(minutes=self.levels[n - 1].after)
        ]

    def pages(self, number: int, severity: str) -> bool:
        level = self.level(number)
        return level is not None and severity in level.severities
