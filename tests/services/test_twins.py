"""Twins as resources through the pipeline (issue 14, item 1): each account answers as its
twin, a change takes effect at the next reply, and the `default` twin is config.toml's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import (
    FakeAccounts,
    FakeMessenger,
    ScriptedLLM,
    WatchedClock,
    incoming,
    start_twin,
    twin_settings,
)
from tests.services.conftest import clock  # noqa: F401  (a fixture)
from twin import keys
from twin.errors import Conflict, InvalidSettings, NotFound


def system_prompt(llm: ScriptedLLM, index: int = -1) -> str:
    return llm.calls[index][0].content


async def test_each_account_answers_as_its_twin(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = twin_settings(engine_url, tmp_path)  # config.toml's [twin]: owner_name Olga
    accounts = FakeAccounts(FakeMessenger("default"), FakeMessenger("work"))
    llm = ScriptedLLM(default="Hello!")
    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        await twin.repo.get_or_create_account("default")
        await twin.repo.get_or_create_account("work")
        twins = twin.app[keys.TWINS]
        sally = {"twin": {"owner_name": "Sally", "persona": "Sells roses."}}
        await twins.create("sales", sally, {})
        await twins.link("work", "sales")

        await twin.intake.incoming(incoming("hi", chat=11, at=clock.now()))
        await twin.recorder.wait_for("reply.sent", count=1)
        assert "You are Olga." in system_prompt(llm)  # default: config.toml's twin

        await twin.intake.incoming(incoming("hi", chat=12, at=clock.now(), account="work"))
        await twin.recorder.wait_for("reply.sent", count=2)
        assert "You are Sally." in system_prompt(llm) and "Sells roses." in system_prompt(llm)

        # A change of the twin is the next reply's persona.
        await twins.replace("sales", {"twin": {"owner_name": "Sara"}}, {})
        await twin.intake.incoming(incoming("there?", chat=12, at=clock.now(), account="work"))
        await twin.recorder.wait_for("reply.sent", count=3)
        assert "You are Sara." in system_prompt(llm) and "Sells roses." not in system_prompt(llm)

        # The account's own overrides stay on top of its twin's.
        await twin.app[keys.BEHAVIOUR].update("work", {"twin": {"owner_name": "Sasha"}})
        await twin.intake.incoming(incoming("and now?", chat=12, at=clock.now(), account="work"))
        await twin.recorder.wait_for("reply.sent", count=4)
        assert "You are Sasha." in system_prompt(llm)


async def test_the_rules_of_twins(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = twin_settings(engine_url, tmp_path)
    async with start_twin(settings, clock=clock) as twin:
        twins = twin.app[keys.TWINS]
        default = await twins.get("default")  # seeded at start: config.toml's values
        assert default.record.settings == {} and default.behaviour.twin.owner_name == "Olga"
        with pytest.raises(Conflict):
            await twins.delete("default")
        with pytest.raises(InvalidSettings) as invalid:
            await twins.create("bad name!", {"twin": {"takeover_minutes": -1}}, {})
        assert {field for field, _ in invalid.value.problems} == {"name", "twin.takeover_minutes"}
        with pytest.raises(InvalidSettings) as mute:  # speech is off: no provider to name
            await twins.create("sales", {}, {"provider": "elevenlabs", "voice_id": "v-1"})
        assert [field for field, _ in mute.value.problems] == ["voice.provider"]
        await twins.create("sales", {}, {"voice_id": "v-1"})
        with pytest.raises(Conflict):
            await twins.create("sales", {}, {})
        await twin.repo.get_or_create_account("shop")
        await twins.link("shop", "sales")
        with pytest.raises(Conflict) as in_use:
            await twins.delete("sales")
        assert in_use.value.problems == [("accounts", "shop")]
        await twins.link("shop", "default")
        await twins.delete("sales")
        with pytest.raises(NotFound):
            await twins.get("sales")
        with pytest.raises(NotFound):
            await twins.link("shop", "sales")


async def test_the_style_is_the_twins(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    settings = twin_settings(engine_url, tmp_path)
    async with start_twin(settings, clock=clock) as twin:
        repo, twins = twin.repo, twin.app[keys.TWINS]
        shop = await repo.get_or_create_account("shop")
        shop2 = await repo.get_or_create_account("shop2")
        home = await repo.get_or_create_account("home")
        await twins.create("sales", {}, {})
        await twins.link("shop", "sales")
        await twins.link("shop2", "sales")
        await repo.put_style_profile(shop.id, {"learnt": "from shop"})
        assert (await repo.get_style_profile(shop2.id)).data == {"learnt": "from shop"}
        assert await repo.get_style_profile(home.id) is None  # `default` has none yet
        await twins.link("shop2", "default")
        assert await repo.get_style_profile(shop2.id) is None
