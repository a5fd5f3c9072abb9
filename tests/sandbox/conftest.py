"""Sandbox test fixtures (defined in fixtures.py so tests/e2e can import them too)."""

from tests.sandbox.fixtures import (  # noqa: F401
    sandbox,
    sandbox_clients,
    sandbox_pair,
    sandbox_pem,
    voice_note_ogg,
)
