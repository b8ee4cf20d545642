"""Runbook compatibility: ``from database.supabase_client import SupabaseClient`` (see docs/runbook.md)."""
