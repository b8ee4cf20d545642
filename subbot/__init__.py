"""subbot: a self-hosted Telegram paid-subscription bot."""

__version__ = "0.1.0"
