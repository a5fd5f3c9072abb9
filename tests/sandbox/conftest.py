"""Sandbox fixtures live in fixtures.py, registered suite-wide by tests/conftest.py."""
