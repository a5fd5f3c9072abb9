"""Fault tests: the real daemon against the sandbox while something breaks (see conftest.py)."""
