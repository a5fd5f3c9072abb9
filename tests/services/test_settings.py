"""Behaviour overrides as a use case (issue 13.5: out of the views): merge, validation as the
pipeline reads them, storage, events — on a real SQLite database."""

from __future__ import annotations

import asyncio

import pytest

from tests.db.conftest import make_settings
from twin.db import migrate
from twin.db.engine import database
from twin.errors import InvalidSettings, NotFound
from twin.services.directory import AccountDirectory
from twin.services.events import EventLog
from twin.services.settings import BehaviourSettings


@pytest.fixture
async def service(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    await migrate.upgrade(url)
    settings = make_settings(url, tmp_path)
    async with database(settings) as db:
        await db.repo.get_or_create_account("default")
        yield BehaviourSettings(settings, db.repo, AccountDirectory(db.repo), EventLog(db.repo))


async def test_a_patch_is_validated_normalised_stored_and_announced(service):
    result = await service.update("default", {"twin": {"takeover_minutes": "45"}})
    assert result.overrides == {"twin": {"takeover_minutes": 45}}
    assert result.behaviour.twin.takeover_minutes == 45
    assert (await service.get("default")).overrides == result.overrides
    dropped = await service.update("default", {"twin": {"takeover_minutes": None}})
    assert dropped.overrides == {}


async def test_invalid_values_name_each_field_and_store_nothing(service):
    with pytest.raises(InvalidSettings) as info:
        await service.update(
            "default",
            {"schedule": {"hours": {"mon": ["25:00-26:00"]}}, "twin": {"takeover_minutes": -1}},
        )
    fields = {field for field, _ in info.value.problems}
    assert "twin.takeover_minutes" in fields
    assert any(field.startswith("schedule.hours") for field in fields)
    assert (await service.get("default")).overrides == {}


async def test_concurrent_patches_keep_each_others_keys(service):
    await asyncio.gather(
        service.update("default", {"twin": {"takeover_minutes": 10}}),
        service.update("default", {"humanize": {"typing_cps": 9.0}}),
    )
    overrides = (await service.get("default")).overrides
    assert overrides == {"twin": {"takeover_minutes": 10}, "humanize": {"typing_cps": 9.0}}


async def test_an_unknown_chat_is_not_found(service):
    with pytest.raises(NotFound, match="chat 5 is unknown to account 'default'"):
        await service.update_chat("default", 5, {"twin": {"voice_replies": "always"}})
