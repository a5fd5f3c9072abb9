"""The admin app's interactions in Chromium: how long from a click (or a keystroke) to the page
showing the answer, against the API request behind it.

    python bench/app.py [--conversations 100] [--turns 3] [--repeat 15]

The daemon runs as `twin run` in its own process (SQLite, a zero-latency fake OpenAI in this
process); `--conversations` HTTP chat conversations of `--turns` turns each are made through
`POST /api/chat` first. Debian's Chromium (driven by Playwright) signs in with the admin key.

Each interaction is timed inside the page: `performance.now()` before the click, and after the
first animation frame in which what it shows is there (the page is painted then). Measured
`--repeat` times each (p50, p95, max), the first visit of a page (its module loaded)
separately:

  api          the page's own `fetch` of GET /conversations?limit=100: the baseline (a
               request, no rendering)
  navigate     a page from the menu (conversations list, drafts, stats with its three charts,
               settings, twins, safety), its data loaded and rendered
  open         a conversation from the list (its newest 50 messages and their reply jobs)
  pause        pause or resume a conversation in the list (POST, then the list again)
  search       one keystroke in the search box to the filtered list

The figures are printed as ms and as × the api baseline. Issue 19's target: every interaction
within 100 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.channels import ANSWER, AUTH, TOKEN, daemon
from tests.providers.openai_fake import FakeOpenAI

# Click `selector` (or type `text` into it), then resolve with the ms until `ready()` holds
# in an animation frame (checked every frame; 5 s at most).
TIMED = """async ([selector, text, ready]) => {
  const until = new Function("return (" + ready + ")()");
  const frame = () => new Promise((resolve) => requestAnimationFrame(resolve));
  const start = performance.now();
  const target = document.querySelector(selector);
  if (text === null) target.click();
  else {
    target.value = text;
    target.dispatchEvent(new Event("input", { bubbles: true }));
  }
  while (!until()) {
    if (performance.now() - start > 5000) throw new Error("not shown: " + ready);
    await frame();
  }
  return performance.now() - start;
}"""

API = """async () => {
  const start = performance.now();
  const response = await fetch("/conversations?limit=100");
  await response.json();
  return performance.now() - start;
}"""

PAGES = [  # (link text, what shows that the page is there); sign-in lands on the overview
    (
        "Drafts",
        "() => document.querySelector('#corrections-h')"
        " && !document.body.innerText.includes('Loading')",
    ),
    ("Stats", "() => document.querySelectorAll('.chart canvas').length === 3"),
    ("Settings", "() => document.querySelector('#hours-mon')"),
    ("Twins", "() => document.querySelector('#persona-h') && document.querySelector('#memory-h')"),
    (
        "Safety",
        "() => document.querySelector('#deliveries-h')"
        " && !document.body.innerText.includes('Loading')",
    ),
    ("Overview", "() => document.querySelector('[data-figure=received]')"),
    ("Conversations", "() => document.querySelectorAll('li[data-chat]').length >= 50"),
]
LIST = PAGES[-1][1]


def figures(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, ordered[-1]


async def seed(base: str, conversations: int, turns: int) -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:

        async def one(n: int) -> None:
            for turn in range(turns):
                body = {
                    "message": f"Question {turn} from visitor {n}: are you open?",
                    "thread_id": f"visitor-{n}",
                }
                async with session.post(base + "/api/chat", json=body) as r:
                    assert r.status == 200, await r.text()

        for start in range(0, conversations, 16):
            await asyncio.gather(*(one(n) for n in range(start, min(start + 16, conversations))))


async def run(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    fake = FakeOpenAI()
    await fake.start()
    fake.respond_with(lambda body: ANSWER)
    results: dict[str, list[float]] = {}
    firsts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        process, base = await daemon(tmp, fake.base_url + "/v1")
        try:
            await seed(base, args.conversations, args.turns)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=executable, args=["--no-sandbox"]
                )
                page = await (await browser.new_context(locale="en-US")).new_page()
                await page.goto(base + "/app/")
                await page.get_by_label("Admin key").fill(TOKEN)
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_selector("[data-figure=received]")

                async def timed(name: str, selector: str, ready: str, text: str | None = None):
                    took = await page.evaluate(TIMED, [selector, text, ready])
                    if name in results or name.startswith("first"):
                        results.setdefault(name, []).append(took)
                    return took

                for link, ready in PAGES:  # first visits: each page's module is loaded
                    firsts[link] = await page.evaluate(
                        TIMED, [f'nav a[href="{await href(page, link)}"]', None, ready]
                    )
                for _ in range(args.repeat):
                    results.setdefault("api", []).append(await page.evaluate(API))
                    for link, ready in PAGES:
                        took = await page.evaluate(
                            TIMED, [f'nav a[href="{await href(page, link)}"]', None, ready]
                        )
                        results.setdefault(f"navigate {link}", []).append(took)
                    await page.evaluate(TIMED, ['nav a[href="#/conversations"]', None, LIST])
                    results.setdefault("open a conversation", []).append(
                        await page.evaluate(
                            TIMED,
                            [
                                "li[data-chat] a",
                                None,
                                "() => document.querySelectorAll('.bubble').length >= 6",
                            ],
                        )
                    )
                    await page.evaluate(TIMED, ['a[href="#/conversations"]', None, LIST])
                    paused = "document.querySelector('li[data-chat] .badge.paused')"
                    results.setdefault("pause", []).append(
                        await page.evaluate(
                            TIMED, ["li[data-chat] button", None, f"() => {paused}"]
                        )
                    )
                    results.setdefault("resume", []).append(
                        await page.evaluate(
                            TIMED, ["li[data-chat] button", None, f"() => !{paused}"]
                        )
                    )
                    results.setdefault("search (keystroke to list)", []).append(
                        await page.evaluate(
                            TIMED,
                            [
                                "#conv-q",
                                "visitor 7:",
                                "() => document.querySelectorAll('li[data-chat]').length === 1",
                            ],
                        )
                    )
                    await page.evaluate(
                        TIMED,
                        [
                            "#conv-q",
                            "",
                            "() => document.querySelectorAll('li[data-chat]').length >= 50",
                        ],
                    )
                await browser.close()
        finally:
            process.terminate()
            process.wait(30)
            await fake.stop()
    api_p50 = figures(results["api"])[0]
    print(
        f"{args.conversations} conversations x {args.turns} turns, {args.repeat} repeats; "
        f"ms (x the api baseline's p50)"
    )
    print(f"{'':34} {'p50':>14} {'p95':>14} {'max':>8}")
    for name, samples in results.items():
        p50, p95, top = figures(samples)
        print(
            f"{name:34} {p50:7.1f} ({p50 / api_p50:4.1f}x) {p95:7.1f} ({p95 / api_p50:4.1f}x)"
            f" {top:8.1f}"
        )
    print(
        "first visit (the page's module loaded): "
        + ", ".join(f"{link} {took:.0f}" for link, took in firsts.items())
    )
    worst = max(figures(samples)[1] for name, samples in results.items() if name != "api")
    print(f"slowest interaction p95: {worst:.1f} ms (target: within 100 ms)")


async def href(page, link: str) -> str:
    return await page.get_by_role("link", name=link, exact=True).get_attribute("href")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=15)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
