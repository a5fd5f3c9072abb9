"""CPU of one chat completion call of the OpenAI adapter: its own aiohttp request
(twin.brain.openai_post, what `OpenAILLM.complete` does) against the same request through the
openai SDK (`client.post(..., cast_to=ChatCompletion)` on its aiohttp transport, what
`complete` did before), in one process, alternating.

    python bench/llm_call.py [--calls 2000] [--rounds 3] [--prompt-chars 3000]

The fake OpenAI server (zero latency) runs in a child process, so only the caller's CPU is
measured (`time.process_time`): per call, over `--calls` calls after 200 unmeasured ones. The
prompt is a system message of `--prompt-chars` characters and a short user message, with the
reply's JSON schema, as a Telegram reply sends.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def serve(queue: multiprocessing.Queue) -> None:
    from tests.providers.openai_fake import FakeOpenAI, brain_json

    async def main() -> None:
        fake = FakeOpenAI()
        fake.respond_with(lambda body: brain_json("ok, see you at five then"))
        await fake.start()
        queue.put(fake.base_url)
        await asyncio.Event().wait()

    asyncio.run(main())


async def measure(url: str, args: argparse.Namespace) -> None:
    from openai.types.chat import ChatCompletion

    from twin.brain.openai_llm import OpenAILLM
    from twin.domain.prompts import PromptMessage
    from twin.domain.structured import REPLY_JSON_SCHEMA

    llm = OpenAILLM(model="gpt-bench", api_key="sk-bench", base_url=url + "/v1")
    messages = [
        PromptMessage("system", ("You are Ivan, you answer briefly. " * 200)[: args.prompt_chars]),
        PromptMessage("user", "are we still on for five?"),
    ]
    body = llm._params(messages, 200, 0.3, REPLY_JSON_SCHEMA)

    async def lean() -> None:
        await llm.complete(messages, json_schema=REPLY_JSON_SCHEMA, max_tokens=200, temperature=0.3)

    async def sdk() -> None:
        response = await llm._client.post("/chat/completions", body=body, cast_to=ChatCompletion)
        assert response.choices[0].message.content

    figures: dict[str, list[float]] = {"lean": [], "sdk": []}
    try:
        for _ in range(args.rounds):
            for name, call in (("sdk", sdk), ("lean", lean)):
                for _ in range(200):
                    await call()
                start = time.process_time()
                for _ in range(args.calls):
                    await call()
                figures[name].append((time.process_time() - start) / args.calls * 1000)
    finally:
        await llm.aclose()
    sdk_ms, lean_ms = statistics.median(figures["sdk"]), statistics.median(figures["lean"])
    print(f"CPU per call, median of {args.rounds} rounds of {args.calls} calls")
    print(f"  openai SDK (baseline)   {sdk_ms:.3f} ms   runs {_runs(figures['sdk'])}")
    print(f"  openai_post             {lean_ms:.3f} ms   runs {_runs(figures['lean'])}")
    print(f"  ratio                   ×{lean_ms / sdk_ms:.2f} (saves {sdk_ms - lean_ms:.3f} ms)")


def _runs(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-chars", type=int, default=3000)
    args = parser.parse_args()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(queue,), daemon=True)
    server.start()
    try:
        asyncio.run(measure(queue.get(timeout=30), args))
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
