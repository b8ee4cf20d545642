"""Airwallex: API client and webhook verification."""
