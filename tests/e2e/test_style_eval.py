"""`twin style eval` end to end (issue 18 §4): the owner's real history on the sandbox (read
through Telethon), the twin's answers from the fake OpenAI server, the score stored and served
by `GET /style/evals`, the HTML report written.

The metric is validated: a "parrot" model that answers in the owner's manner (short, lowercase,
")"-smileys, ты) must score clearly above a "formal assistant" (long, polite, capitalised
sentences with em dashes and exclamation marks). Before a paid model is called, the cost is
estimated and the owner asked; "n" calls nothing."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import pytest
from telethon import functions

from tests.e2e.conftest import OWNER_PHONE, login
from twin import keys
from twin.cli_style import _style_eval
from twin.services.style import build_style

pytestmark = pytest.mark.e2e

OWNER_LINES = (
    "ок)", "да, давай)", "щас гляну", "не, завтра не могу", "ну ты даешь))", "ага, в 7 норм",
    "пиши если что", "хз, посмотрим)", "го в субботу", "круто)", "ща буду", "ты где?",
    "норм, спс)", "давай позже", "ахах)", "я на работе", "ну ок", "тебе скинуть?",
    "завтра наберу", "ой забыла)", "да без проблем", "лан)", "я в пути", "скинь адрес",
)
CONTACT_LINES = (
    "Привет! Ты завтра свободна?", "Когда встретимся?", "Можешь скинуть адрес?",
    "Слушай, а ты видела новости?", "Ты будешь на дне рождения в субботу?",
    "Напомни, пожалуйста, во сколько начало.", "Я опаздываю минут на десять.",
    "Ты получила мои фотографии?", "Как прошла неделя?", "Давай сходим в кино.",
)
FORMAL = (
    "Конечно! Благодарю Вас за сообщение — я с удовольствием помогу. Давайте уточним детали: "
    "когда Вам будет удобно встретиться? Буду рад ответить на любые Ваши вопросы!"
)


def owner_text(rng: random.Random) -> str:
    return rng.choice(OWNER_LINES)


def seed_history(sandbox: Any, owner: Any, friends: list[Any], exchanges: int) -> None:
    rng = random.Random(7)
    for n in range(exchanges):
        friend = friends[n % len(friends)]
        for _ in range(rng.randint(1, 2)):
            sandbox.send_message(friend, owner, rng.choice(CONTACT_LINES))
        for _ in range(rng.choice((1, 1, 2))):
            sandbox.send_message(owner, friend, owner_text(rng))


def parrot(rng: random.Random):
    return lambda body: {"text": owner_text(rng)}


def formal(body: dict[str, Any]) -> dict[str, Any]:
    return {"text": FORMAL}


async def test_a_parrot_scores_clearly_above_a_formal_assistant(
    sandbox, sandbox_clients, make_daemon, fake_openai, tmp_path: Path, capsys, monkeypatch
):
    owner = sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    friends = [
        sandbox.create_user(f"1555031{i}", f"Friend{i}", username=f"pal_{i}_x") for i in range(4)
    ]
    for friend in friends:
        sandbox.add_contact(owner, friend)
    seed_history(sandbox, owner, friends, exchanges=64)
    llm = {
        "provider": "openai",
        "model": "gpt-test",
        "base_url": fake_openai.base_url + "/v1",
        "api_key": "sk-test",
        "max_retries": 0,
        "timeout": 5,
        "prices": {"gpt-test": {"input": 1.0, "output": 2.0}},  # a paid model: asks first
    }
    # mode off: the daemon itself answers nobody while the history is there
    daemon = await make_daemon(llm=llm, twin={"mode": "off", "owner_name": "Olga"})
    await login(daemon, sandbox)
    account = await daemon.app[keys.ACCOUNTS].get()
    await account.client(functions.contacts.GetContactsRequest(hash=0))
    repo = daemon.app[keys.DATABASE].repo
    account_id = await daemon.app[keys.INTAKE].account_id("default")
    profile = await build_style(account, repo, account_id, limit=1000)  # examples in the prompt
    assert profile.examples

    async def run(*, yes: bool, answer: str = "", report: Path | None = None) -> int:
        monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        return await _style_eval(daemon.settings, "default", 20, 3, report, yes)

    # a paid model: the estimate is shown and "n" calls nothing, stores nothing
    assert await run(yes=False, answer="n\n") == 1
    err = capsys.readouterr().err
    assert "20 calls to openai gpt-test" in err and "cost at most $" in err
    assert "Cancelled: no model was called." in err
    assert fake_openai.chat_requests == []
    assert (await daemon.call("GET", "/style/evals"))[1]["evals"] == []

    fake_openai.respond_with(parrot(random.Random(11)))
    assert await run(yes=False, answer="y\n", report=tmp_path / "parrot.html") == 0
    out = capsys.readouterr().out
    assert "Style score:" in out and "authorship:" in out
    assert len(fake_openai.chat_requests) == 20

    fake_openai.respond_with(formal)
    assert await run(yes=True, report=tmp_path / "formal.html") == 0
    capsys.readouterr()

    status, body = await daemon.call("GET", "/style/evals")
    assert status == 200
    formal_eval, parrot_eval = body["evals"]  # newest first
    assert parrot_eval["samples"] == formal_eval["samples"] == 20
    assert parrot_eval["model"] == "gpt-test"
    gap = parrot_eval["score"] - formal_eval["score"]
    assert gap >= 40, (parrot_eval["score"], formal_eval["score"])
    assert parrot_eval["score"] >= 75
    parrot_result, formal_result = parrot_eval["result"], formal_eval["result"]
    # each part of the score tells them apart, not just the sum
    for part in ("style", "authorship", "tells"):
        assert parrot_result["components"][part] > formal_result["components"][part], part
    assert formal_result["tells"]["em_dash"]["twin"] == 1.0
    assert formal_result["tells"]["em_dash"]["owner"] == 0.0
    assert parrot_result["authorship"]["accuracy"] > 0.8  # the owner is recognisable at all
    assert parrot_result["usage"]["prompt_tokens"] > 0 and parrot_result["usage"]["cost_known"]

    report = (tmp_path / "parrot.html").read_text(encoding="utf-8")
    assert (tmp_path / "parrot.html").stat().st_mode & 0o777 == 0o600  # private messages in it
    assert parrot_eval["report_path"] == str((tmp_path / "parrot.html").resolve())
    assert "<svg" in report and "<script" not in report and "http" not in report
    assert "Some of the held-out conversations" in report


async def test_too_few_answers_to_test_on_is_said_plainly(
    sandbox, sandbox_clients, make_daemon, capsys
):
    sandbox.create_user(OWNER_PHONE, "Olga", username="olga_owner")
    daemon = await make_daemon(twin={"mode": "off"})
    await login(daemon, sandbox)
    assert await _style_eval(daemon.settings, "default", 10, 0, None, True) == 1
    assert "Too few of your answers to test on: 0 found" in capsys.readouterr().err
