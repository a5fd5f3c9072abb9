"""Prompt tokens sent per reply versus conversation length.

Runs the real Brain (OpenAI adapter, official SDK) against an in-process FakeOpenAI, growing one
chat turn by turn to 5000 turns: every contact turn gets a reply, the owner's answer is appended,
and the rolling summary / its coverage are carried from reply to reply exactly as the pipeline
stores them. At 10, 50, 100, 500, 1000 and 5000 turns it prints the reply call's prompt tokens
(twin's conservative estimate and the fake's 4-characters-per-token count), the tokens of all
calls of that reply (summary folds included) averaged over the last 50 replies, and what sending
the whole history would cost. The curve must be flat once the budget is reached.

With `--knowledge N` the twin also has a knowledge base of N chunks (the labelled bike-workshop
documents plus irrelevant filler, tests/knowledge) in a temporary SQLite database, and every
reply gets the passages `KnowledgeBase.context` finds for the conversation, as the
pipeline does: the table adds how many passages and how many of their tokens each prompt
holds — the budget still holds, and the passages keep to their share of it.

    python bench/prompt_growth.py [--turns 5000] [--context 3000] [--output 400] [--knowledge 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib
import tempfile
from collections.abc import AsyncIterator

from tests.knowledge.filler import filler_documents
from tests.providers.openai_fake import FakeOpenAI, brain_json
from twin.brain.openai_llm import OpenAILLM
from twin.brain.service import Brain
from twin.config import load_settings
from twin.db import migrate
from twin.db.engine import database
from twin.domain.conversation import Persona, Turn
from twin.domain.prompts import Reference, build_prompt
from twin.services.knowledge import KnowledgeBase

DATA = Path(__file__).resolve().parents[1] / "tests" / "knowledge" / "data"

CHECKPOINTS = (10, 50, 100, 500, 1000, 5000)
WINDOW = 50  # replies averaged for the "all calls" column

PHRASES_RU = [
    "привет",
    "сколько стоит заменить цепь?",
    "а велосипед на зиму можно оставить у вас?",
    "как дела?",
    "слушай, а ты завтра свободен вечером?",
    "ок)",
    "давай в семь у метро",
    "я тут подумал насчёт поездки в выходные, может всё-таки на машине поедем?",
    "ахаха точно",
    "скинь потом фотки пожалуйста",
    "не, сегодня никак, завал на работе",
    "кстати, ты видел новый фильм? говорят очень неплохой",
]
PHRASES_EN = [
    "hey",
    "sounds good",
    "what time works for you tomorrow?",
    "haha yes",
    "I was thinking about the trip again, maybe we should leave on Friday night instead",
    "do you rent e-bikes, and what deposit do you need?",
    "sure, send me the address",
    "running late, 10 min",
    "thanks!!",
]


def message(rng: random.Random) -> str:
    pool = PHRASES_RU if rng.random() < 0.7 else PHRASES_EN
    return " ".join(rng.choice(pool) for _ in range(rng.choice((1, 1, 1, 2, 3))))


def fold_or_reply(body: dict) -> str | dict:
    system = body["messages"][0]["content"]
    if system.startswith("You keep short running notes"):
        # a model keeping notes: a few sentences, about as long as a real summary
        return "Anna and Ivan talk about a weekend trip, films and work. " * 6
    return brain_json("ок, давай")


@contextlib.asynccontextmanager
async def knowledge_base(chunks: int) -> AsyncIterator[tuple[KnowledgeBase, int] | None]:
    """A twin's knowledge base of about `chunks` chunks in a temporary SQLite database (the
    labelled documents first, filler for the rest), and the account answering as it."""
    if not chunks:
        yield None
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'kb.db'}"
        await migrate.upgrade(url)
        settings = load_settings(
            None, storage={"url": url, "data_dir": tmp}, security={"secret_key": "b" * 32}
        )
        async with database(settings) as db:
            twin = await db.repo.ensure_twin("default")
            account = await db.repo.channel_instance("bench", "http_chat")
            knowledge = KnowledgeBase(settings=settings.knowledge, repo=db.repo)
            for lang in ("ru", "en"):
                for path in sorted((DATA / lang).iterdir()):
                    await knowledge.add_file(twin, f"{lang}-{path.name}", path.read_bytes())
            held = sum(d.chunks for d in await db.repo.knowledge_documents(twin.id))
            for name, text in filler_documents(max(chunks - held, 0)):
                await knowledge.add_text(twin, name, text)
            held = sum(d.chunks for d in await db.repo.knowledge_documents(twin.id))
            print(f"knowledge base: {held} chunks")
            yield knowledge, account.id


async def run(turns: int, context: int, output: int, chunks: int = 0) -> None:
    async with knowledge_base(chunks) as kb:
        await _run(turns, context, output, kb)


async def _run(turns: int, context: int, output: int, kb: tuple[KnowledgeBase, int] | None) -> None:
    rng = random.Random(42)
    fake = FakeOpenAI()
    await fake.start()
    fake.respond_with(fold_or_reply)
    llm = OpenAILLM(model="gpt-4o-mini", api_key="bench", base_url=fake.base_url + "/v1")
    brain = Brain(
        llm,
        context_tokens=context,
        max_output_tokens=output,
        prices={"gpt-4o-mini": {"input": 0.15, "output": 0.6}},
    )
    persona = Persona("Ivan", facts=("lives in Berlin", "works as a dentist"), language="ru")
    history: list[Turn] = []
    summary: str | None = None
    covers = 0
    t0 = datetime(2024, 1, 1, 9, 0)
    recent: list[int] = []
    rows = []
    fold_calls = 0
    peak = 0
    passage_counts: list[int] = []
    passage_tokens: list[int] = []
    started = time.perf_counter()
    checkpoints = [c for c in CHECKPOINTS if c <= turns] or [turns]
    while len(history) < turns:
        at = t0 + timedelta(minutes=len(history))
        history.append(Turn("contact", message(rng), at))
        reference = None
        if kb is not None:
            context = await kb[0].context(kb[1], 0, history[covers:], summary, memory=False)
            reference = Reference(tuple(context.passages), (), "general", context.has_knowledge)
        result = await brain.reply(
            history=history,
            persona=persona,
            contact_name="Anna",
            summary=summary,
            summary_covers=covers,
            reference=reference,
        )
        given = result.prompt.passages
        passage_counts.append(len(given))
        passage_tokens.append(sum(p.tokens for p in given))
        summary, covers = result.summary, result.summary_covers
        fold_calls += len(result.folds)
        peak = max(peak, result.prompt.estimated_tokens)
        recent = [*recent, result.usage.prompt_tokens][-WINDOW:]
        history.append(Turn("owner", result.reply.text, at + timedelta(seconds=30)))
        for n in checkpoints:
            if len(history) - 2 < n <= len(history):
                # the same prompt with every turn in it (no budget, no summary)
                seen = history[:-1]  # what this reply was built from
                naive = build_prompt(persona, None, seen, None, [], 10**9, "Anna", now=seen[-1].at)
                rows.append(
                    (
                        n,
                        result.prompt.estimated_tokens,
                        result.completion.prompt_tokens,
                        sum(recent) / len(recent),
                        result.prompt.kept_turns,
                        covers,
                        fold_calls,
                        naive.estimated_tokens,
                        passage_counts[-1],
                        passage_tokens[-1],
                    )
                )
    elapsed = time.perf_counter() - started
    await llm.aclose()
    await fake.stop()

    print(f"budget: {brain.budget_tokens} prompt tokens (context {context} - output {output})")
    header = (
        f"{'turns':>6} {'reply est':>10} {'reply fake':>10} {'all calls':>10} "
        f"{'verbatim':>9} {'folded':>7} {'folds':>6} {'whole history':>14}"
        f"{'passages':>9} {'their tokens':>13}"
    )
    print(header)
    print("-" * len(header))
    for n, est, fake_count, avg, kept, folded, folds, naive, given, given_tokens in rows:
        print(
            f"{n:>6} {est:>10} {fake_count:>10} {avg:>10.0f} {kept:>9} {folded:>7} {folds:>6} "
            f"{naive:>14}{given:>9} {given_tokens:>13}"
        )
    replies = (len(history) + 1) // 2
    print(f"\n{replies} replies, {fold_calls} summary folds, {elapsed:.1f} s")
    print(f"largest reply prompt over all replies: {peak} estimated tokens")
    if kb is not None:
        share = int(brain.budget_tokens * brain.knowledge_share)
        print(
            f"passages per reply: mean {sum(passage_counts) / len(passage_counts):.1f}, their "
            f"tokens at most {max(passage_tokens)} (share: {share} of {brain.budget_tokens})"
        )
    print(
        "reply est = twin's estimate of the reply prompt (never above the budget); reply fake ="
        " the fake's count (4 chars/token);\nall calls = the fake's count for every call of a reply"
        " (summary folds included), mean of the last 50 replies;\nverbatim = turns sent as is;"
        " folded = turns covered by the summary; folds = fold calls so far;\nwhole history ="
        " twin's estimate of the same prompt with every turn in it."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=5000)
    parser.add_argument("--context", type=int, default=3000)
    parser.add_argument("--output", type=int, default=400)
    parser.add_argument("--knowledge", type=int, default=0, help="chunks in the knowledge base")
    args = parser.parse_args()
    asyncio.run(run(args.turns, args.context, args.output, args.knowledge))


if __name__ == "__main__":
    main()
