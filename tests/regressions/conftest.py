"""Regression tests (one module per fixed defect, named after its issue) use the end-to-end
fixtures: the real daemon against the sandbox MTProto server and the provider fakes."""

from tests.api.conftest import make_client  # noqa: F401  (a fixture)
from tests.e2e.conftest import make_daemon, postgres_database  # noqa: F401  (a fixture)
