"""Shared pieces of the data tools (backup, restore, export, import, integrity): codec and helpers."""
