"""Fault tests: the real daemon (create_app, in-process) against the sandbox MTProto server and
the provider fakes while something breaks — the database (SQLite locked, PostgreSQL behind a
proxy that goes down), the MTProto server (down and back, refusals, undecodable updates), the
LLM provider — asserting that nothing is lost, nothing is doubled and the daemon says what is
happening (status, /ready, metrics, one log line per event). Synchronisation waits on events
and conditions only.
"""

from __future__ import annotations

from tests.e2e.conftest import make_daemon, postgres_database  # noqa: F401  (the e2e daemon fixture)
