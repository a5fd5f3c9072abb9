"""Issue 11 (found in review): naming an account that never logged in (GET /auth/status on a fresh
install) makes /ready answer 503 for good: an account object that was never started counts as
"may be logged in" (expects_link) although its stored session was never looked at."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import fast_pipeline

pytestmark = pytest.mark.e2e


async def test_ready_stays_200_after_a_status_read_on_a_fresh_install(
    sandbox, make_daemon, fake_openai
):
    daemon = await make_daemon(**fast_pipeline(fake_openai.base_url + "/v1"))
    assert (await daemon.client.get("/ready")).status == 200  # nobody is logged in

    status, body = await daemon.call("GET", "/auth/status")
    assert status == 200 and body["authorized"] is False

    response = await daemon.client.get("/ready")
    assert response.status == 200, await response.json()
