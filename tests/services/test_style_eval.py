"""`twin style eval`'s service steps on a real database: the held-out answers never reach a
prompt (not as a style example, not as a correction, not in the conversation), the cost is
estimated from the prompts the brain would build, and a free model needs no confirmation; the
result is stored and listed newest first (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.db.conftest import (  # noqa: F401  (fixtures)
    account,
    backend_url,
    chat,
    db,
    engine_url,
    migrated_url,
    postgres_url,
    repo,
)
from twin.brain.echo_llm import EchoLLM
from twin.brain.factory import build_provider
from twin.brain.pricing import DEFAULT_PRICES, PriceTable
from twin.brain.service import Brain
from twin.config import load_settings
from twin.domain.conversation import StyleExample, StyleProfile
from twin.domain.style_eval import Line, corpus_of
from twin.services.policy import behaviour_of
from twin.services.style_eval import (
    Answered,
    Answering,
    NothingToScore,
    answer,
    estimate,
    measure,
    prepare,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PEER = 1001  # the `chat` fixture's peer


def history(pairs: int) -> list[Line]:
    out = []
    for n in range(pairs):
        out.append(Line(2 * n + 1, T0 + timedelta(minutes=2 * n), False, f"question {n}?"))
        out.append(Line(2 * n + 2, T0 + timedelta(minutes=2 * n + 1), True, f"answer {n})"))
    return out


def profile(texts: list[str]) -> StyleProfile:
    return StyleProfile(
        message_count=len(texts), examples=tuple(StyleExample(PEER, t) for t in texts)
    )


async def test_held_out_answers_never_reach_the_prompt(repo: Any, account: Any, chat: Any):  # noqa: F811
    corpus = corpus_of([(PEER, history(12))])
    style = profile([f"answer {n})" for n in range(12)])
    prepared = prepare(corpus, 4, seed=1, style=style)
    secret = {m for sample in prepared.held for m in sample.answer}
    assert len(secret) == 4
    assert prepared.style is not None
    kept = {e.text for e in prepared.style.examples}
    assert kept == {f"answer {n})" for n in range(12)} - secret
    assert not secret & set(prepared.reference) and len(prepared.reference) == 8

    # an owner's correction whose text is a held-out answer is not an example either
    def corrections(tx: Any) -> None:
        for text in [*sorted(secret), "answer 99)"]:
            kind = "followed_up" if text == "answer 99)" else "edited"  # both kinds allowed
            tx.record_correction(
                account.id, chat.id, kind, context="question?", twin_text="x", owner_text=text
            )

    await repo.transaction(corrections)
    settings = load_settings(None, twin={"corrections_scope": "chat"})
    brain = Brain(EchoLLM())
    answering = Answering(brain, repo, account.id, behaviour_of(settings), prepared)
    for sample in prepared.held:
        inputs = await answering.inputs(sample)
        assert inputs["history"][-1].role == "contact"  # the answer is what comes next
        texts = {t.text for t in inputs["history"]}
        assert not texts & set(sample.answer)
        assert [owner for _, owner in inputs["examples"]] == ["answer 99)"]

    planned = await estimate(answering)
    assert planned.free  # the in-process echo model costs nothing: no question asked
    assert planned.prompt_tokens > 0
    assert planned.completion_tokens == 4 * brain.max_output_tokens

    answered = await answer(answering, bubble_max_chars=500)
    assert answered.failed == 0 and all(a is not None for a in answered.answers)
    result = measure(prepared, answered)
    assert result["authorship"] is None  # 8 messages of the owner: too few to train on
    assert result["components"]["authorship"] is None
    assert 0 <= result["score"] <= 100 and result["samples"] == 4


async def test_a_priced_model_is_estimated_and_results_are_listed_newest_first(
    repo: Any, account: Any  # noqa: F811
):
    prepared = prepare(corpus_of([(PEER, history(6))]), 3, seed=0, style=None)
    behaviour = behaviour_of(load_settings(None))

    async def estimated(model: str) -> Any:
        # an OpenAI model (never called: estimating builds the prompts only)
        llm = build_provider(
            "openai", model=model, api_key="k", base_url="http://127.0.0.1:9/v1", timeout=5
        )
        brain = Brain(llm, prices=PriceTable(None, defaults=DEFAULT_PRICES))
        try:
            return await estimate(Answering(brain, repo, account.id, behaviour, prepared))
        finally:
            await llm.aclose()

    planned = await estimated("gpt-4o-mini")  # a price the default table knows
    assert not planned.free and planned.cost.priced
    expected = (planned.prompt_tokens * 0.15 + planned.completion_tokens * 0.60) / 1e6
    assert abs(planned.cost.usd - expected) < 1e-12
    unknown = await estimated("my-local-model")  # no price: still asked, cost unknown
    assert not unknown.free and not unknown.cost.priced

    empty = Answered([None] * 3, escalated=2, failed=1, prompt_tokens=0, completion_tokens=0,
                     cost=planned.cost)
    with pytest.raises(NothingToScore, match=r"none of the 3 .*2 handed to the owner, 1 failed"):
        measure(prepared, empty)  # never a score (it would be a perfect one) for no answer
    one = Answered([("ok",), None, None], escalated=2, failed=0, prompt_tokens=0,
                   completion_tokens=0, cost=planned.cost)
    for score in (40, 60):
        result = measure(prepared, one) | {"score": score}
        await repo.add_style_eval(
            account.id, model="m", samples=3, score=score, result=result, report_path=None
        )
    listed = await repo.style_evals(account.id)
    assert [e.score for e in listed] == [60, 40]
    assert listed[0].result["escalated"] == 2 and listed[0].account == "default"
    assert [e.score for e in await repo.style_evals(account.id, limit=1)] == [60]
