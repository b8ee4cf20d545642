"""Tests of subbot.sandbox.telegram (the local Telegram Bot API emulator)."""
