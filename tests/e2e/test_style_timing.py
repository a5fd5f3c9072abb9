"""`twin style build` measures the owner's reply timing from real history (both directions,
read through Telethon from the sandbox) and GET /style shows the learned distribution."""

from __future__ import annotations

import time

from tests.e2e.conftest import OWNER_PHONE, login
from twin import keys
from twin.domain.timing import LATENCY_CAP_S
from twin.services.style import build_style

HOUR = 3600


async def test_style_build_learns_reply_latency_and_get_style_shows_it(sandbox, make_daemon):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    ann = sandbox.create_user("15550401", "Ann", username="ann_x")
    bob = sandbox.create_user("15550402", "Bob", username="bob_x")
    sandbox.add_contact(owner, ann)
    sandbox.add_contact(owner, bob)
    start = int(time.time()) - 4 * 24 * HOUR  # history four days old (the server's clock)

    def at(moment: int, sender, to, text: str) -> None:
        sandbox.clock.skew = moment - time.time()  # the message is dated exactly `moment`
        sandbox.send_message(sender, to, text)

    latencies = []
    for n in range(24):  # Ann: a question every 2 h, answered after 30 s … 3 min
        asked = start + n * 2 * HOUR
        latency = 30 * (n % 6 + 1)
        at(asked, ann, owner, f"вопрос {n}?")
        if n % 2:  # a second question before the answer: counted from the first
            at(asked + 10, ann, owner, "алло")
        at(asked + latency, owner, ann, f"ответ {n}")
        at(asked + latency + 5, owner, ann, "ок")  # the owner's second message: no reply
        latencies.append(latency)
    for n in range(3):  # Bob: answered over 12 h later each time, not replies
        at(start + n * 14 * HOUR, bob, owner, "ты тут?")
        at(start + n * 14 * HOUR + LATENCY_CAP_S + 60, owner, bob, "да")
    sandbox.clock.skew = 0

    daemon = await make_daemon()
    await login(daemon, sandbox)
    account = await daemon.app[keys.ACCOUNTS].get()
    repo = daemon.app[keys.DATABASE].repo
    account_id = await daemon.app[keys.INTAKE].account_id("default")
    await build_style(account, repo, account_id, limit=1000, timezone="Europe/Berlin")

    status, body = await daemon.call("GET", "/style")
    assert status == 200, body
    timing = body["timing"]
    assert timing["timezone"] == "Europe/Berlin"
    assert timing["samples"] == 24 and timing["over_cap"] == 3
    assert timing["median_s"] == 90  # 30, 60 … 180 s four times each: the lower median
    assert timing["contacts"] == [{"chat_id": ann.id, "samples": 24, "median_s": 90}]
    assert timing["typing_samples"] == 24  # "ок" 5 s after each answer: 2 chars / 5 s
    assert timing["typing_cps"] == 0.4
    assert len(timing["hours"]) == 168
    assert sum(hour["samples"] for hour in timing["hours"]) == 24
    assert {hour["source"] for hour in timing["hours"]} <= {"any time"} | {
        f"{h:02d}h on any day" for h in range(24)
    }
    assert timing["summary"].startswith("Reply timing (Europe/Berlin): 24 replies measured")
