"""Prompt tokens sent per reply versus conversation length.

Runs the real Brain (OpenAI adapter, official SDK) against an in-process FakeOpenAI, growing one
chat turn by turn to 5000 turns: every contact turn gets a reply, the owner's answer is appended,
and the rolling summary / its coverage are carried from reply to reply exactly as the pipeline
stores them. At 10, 50, 100, 500, 1000 and 5000 turns it prints the reply call's prompt tokens
(twin's conservative estimate and the fake's 4-characters-per-token count), the tokens of all
calls of that reply (summary folds included) averaged over the last 50 replies, and what sending
the whole history would cost. The curve must be flat once the budget is reached.

    python bench/prompt_growth.py [--turns 5000] [--context 3000] [--output 400]
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

from tests.providers.openai_fake import FakeOpenAI, brain_json
from twin.brain.openai_llm import OpenAILLM
from twin.brain.service import Brain
from twin.domain.conversation import Persona, Turn
from twin.domain.prompts import build_prompt

CHECKPOINTS = (10, 50, 100, 500, 1000, 5000)
WINDOW = 50  # replies averaged for the "all calls" column

PHRASES_RU = [
    "привет",
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


async def run(turns: int, context: int, output: int) -> None:
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
    started = time.perf_counter()
    checkpoints = [c for c in CHECKPOINTS if c <= turns] or [turns]
    while len(history) < turns:
        at = t0 + timedelta(minutes=len(history))
        history.append(Turn("contact", message(rng), at))
        result = await brain.reply(
            history=history,
            persona=persona,
            contact_name="Anna",
            summary=summary,
            summary_covers=covers,
        )
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
                    )
                )
    elapsed = time.perf_counter() - started
    await llm.aclose()
    await fake.stop()

    print(f"budget: {brain.budget_tokens} prompt tokens (context {context} - output {output})")
    header = (
        f"{'turns':>6} {'reply est':>10} {'reply fake':>10} {'all calls':>10} "
        f"{'verbatim':>9} {'folded':>7} {'folds':>6} {'whole history':>14}"
    )
    print(header)
    print("-" * len(header))
    for n, est, fake_count, avg, kept, folded, folds, naive in rows:
        print(
            f"{n:>6} {est:>10} {fake_count:>10} {avg:>10.0f} {kept:>9} {folded:>7} {folds:>6} "
            f"{naive:>14}"
        )
    replies = (len(history) + 1) // 2
    print(f"\n{replies} replies, {fold_calls} summary folds, {elapsed:.1f} s")
    print(f"largest reply prompt over all replies: {peak} estimated tokens")
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
    args = parser.parse_args()
    asyncio.run(run(args.turns, args.context, args.output))


if __name__ == "__main__":
    main()
