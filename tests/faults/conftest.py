"""Fault tests: the real daemon (create_app, in-process) against the sandbox MTProto server while
something breaks (the server goes down and comes back, Telegram refuses requests, updates arrive
that the client cannot decode), asserting that nothing is lost, nothing is doubled and the
daemon says what is happening (status, /ready, metrics, one log line per event). Synchronisation
waits on events and conditions only.
"""

from __future__ import annotations

from tests.e2e.conftest import make_daemon  # noqa: F401  (the e2e daemon fixture)
