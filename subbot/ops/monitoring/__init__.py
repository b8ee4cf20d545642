"""The monitor's parts: check types, the checks themselves, queries shared with /health, output."""
