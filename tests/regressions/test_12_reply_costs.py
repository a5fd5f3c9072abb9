"""Issue 12.8: GET /messages shows tokens and cost for each generated reply — with built-in
prices for the common models (overridable per model in `[llm.prices]`), and an unknown model's
cost shown as unknown (null), not as free. Before: no prices were configured by default, so
every reply cost 0."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for_event
from tests.faults.test_provider_outage import start
from twin.brain.pricing import DEFAULT_PRICES

pytestmark = pytest.mark.e2e


async def _answered(daemon, sandbox, owner, carl) -> dict:
    sandbox.send_message(carl, owner, "what does it cost?")
    await wait_for_event(daemon, "reply.sent", timeout=30)
    status, body = await daemon.call("GET", "/messages", params={"chat": carl.id})
    assert status == 200
    [generated] = [m for m in body["messages"] if m["prompt_tokens"] is not None]
    assert generated["completion_tokens"] > 0
    return generated


@pytest.mark.parametrize(
    ("model", "prices", "expected"),
    [
        ("gpt-4o-mini-2024-07-18", {}, DEFAULT_PRICES["gpt-4o-mini"]),  # built in, dated name
        ("gpt-4o-mini", {"gpt-4o-mini": {"input": 1.0, "output": 2.0}}, (1.0, 2.0)),  # override
        ("gpt-test", {}, None),  # nobody knows its price
    ],
)
async def test_a_generated_reply_shows_its_tokens_and_cost(
    sandbox, make_daemon, fake_openai, model, prices, expected
):
    daemon, owner, (carl,) = await start(
        sandbox, make_daemon, fake_openai, friends=1, llm={"model": model, "prices": prices}
    )
    generated = await _answered(daemon, sandbox, owner, carl)
    if expected is None:
        assert generated["cost_usd"] is None
        return
    per_input, per_output = (
        (expected.input_per_million, expected.output_per_million)
        if hasattr(expected, "input_per_million")
        else expected
    )
    cost = (
        generated["prompt_tokens"] * per_input + generated["completion_tokens"] * per_output
    ) / 1_000_000
    assert generated["cost_usd"] == pytest.approx(cost)
    assert generated["cost_usd"] > 0
