"""Fault tests drive the real daemon (the end-to-end fixtures) through outages of what it
depends on: the database, the MTProto server, the LLM provider. Each asserts that every
message ends answered exactly once."""

from tests.e2e.conftest import make_daemon  # noqa: F401  (a fixture)
