"""Benchmarks for subbot: ``make bench`` (``python -m bench``) runs them all, ``python -m bench NAME`` one.

Every benchmark talks only to servers it starts itself on 127.0.0.1 and stops by itself.
"""
