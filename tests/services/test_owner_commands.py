"""Owner commands through the daemon's services (twin.services.commands) on real storage, with
Telegram replaced by the in-memory messenger: what each command changes, what it deletes and
acknowledges, and that a command delivered twice acts and acknowledges once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.fakes import ScriptedLLM, WatchedClock, start_twin, twin_settings
from twin import keys
from twin.domain.commands import OwnerText, ack_random_id
from twin.domain.models import PAUSED_FOREVER
from twin.errors import TelegramUnavailable

OWNER = 777  # the owner's own id: their Saved Messages


def typed(text: str, clock: WatchedClock, *, chat: int = 501, message_id: int = 40) -> OwnerText:
    return OwnerText("default", chat, message_id, clock.now(), text, saved=chat == OWNER)


async def test_commands_change_the_mode_and_the_chat_and_are_deleted_and_acknowledged(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(engine_url, tmp_path)
    async with start_twin(settings, clock=clock, llm=ScriptedLLM()) as twin:
        commands = twin.app[keys.SERVICES]["commands"]
        safety = twin.app[keys.SAFETY]
        account_id = await twin.app[keys.DIRECTORY].id_of("default")

        assert not await commands.on_owner_text(typed("on my way", clock))  # not a command
        assert twin.messenger.deleted == [] and twin.recorder.of("owner.command") == []

        draft = typed(".twin  DRAFT", clock, message_id=41)
        assert await commands.on_owner_text(draft)
        assert safety.mode_of(account_id).value == "draft"
        assert twin.messenger.deleted == [(501, 41)]
        [ack] = twin.messenger.delivered
        assert ack.chat == "me" and ack.random_id == ack_random_id("default", 501, 41)
        assert ack.text.startswith("twin: draft mode on 'default'")
        [event] = twin.recorder.of("owner.command")
        assert event.data == {
            "chat": 501,
            "message_id": 41,
            "command": "draft",
            "result": "mode",
            "applied": True,
            "deleted": True,
            "acknowledged": True,
            "mode": "draft",
        }

        # Delivered again (a catch-up after a crash): unchanged, not acknowledged twice.
        assert await commands.on_owner_text(draft)
        assert len(twin.messenger.delivered) == 1
        assert twin.recorder.of("owner.command")[-1].data["result"] == "unchanged"
        assert len(twin.recorder.of("account.mode")) == 1

        # A pause counts from the command, in a chat the twin never saw: delivered again, the
        # same end.
        pause = typed(".twin pause 2h", clock, chat=502, message_id=42)
        await clock.advance(60)
        assert await commands.on_owner_text(pause)
        chat = await twin.repo.get_chat_by_peer(account_id, 502)
        assert chat.paused_until == pause.date + timedelta(hours=2)
        await clock.advance(60)
        assert await commands.on_owner_text(pause)
        chat = await twin.repo.get_chat_by_peer(account_id, 502)
        assert chat.paused_until == pause.date + timedelta(hours=2)
        assert twin.messenger.delivered[-1].text.startswith("twin: paused in chat 502 for 2 h")

        # In Saved Messages a pause has no chat: nothing changes, the owner is told why.
        assert await commands.on_owner_text(typed(".twin pause", clock, chat=OWNER, message_id=43))
        assert "works in a chat" in twin.messenger.delivered[-1].text
        assert twin.recorder.of("owner.command")[-1].data["result"] == "not_a_chat"

        # `pause` alone: until resumed; `resume` ends it.
        assert await commands.on_owner_text(typed(".twin pause", clock, message_id=44))
        chat = await twin.repo.get_chat_by_peer(account_id, 501)
        assert chat.paused_until == PAUSED_FOREVER
        assert await commands.on_owner_text(typed(".twin resume", clock, message_id=45))
        chat = await twin.repo.get_chat_by_peer(account_id, 501)
        assert chat.paused_until is None
        assert twin.messenger.delivered[-1].text.startswith("twin: resumed in")


async def test_a_command_not_understood_or_not_deleted_still_gets_its_answer(
    engine_url: str, tmp_path: Any, clock: WatchedClock
) -> None:
    settings = twin_settings(engine_url, tmp_path, twin={"command_prefix": "!tw"})
    async with start_twin(settings, clock=clock, llm=ScriptedLLM()) as twin:
        commands = twin.app[keys.SERVICES]["commands"]
        assert not await commands.on_owner_text(typed(".twin off", clock))  # not this prefix

        assert await commands.on_owner_text(typed("!TW frobnicate", clock, message_id=50))
        [usage] = twin.messenger.texts("me")
        assert usage.startswith("twin: `!TW frobnicate`: unknown command 'frobnicate'.")
        assert "`!tw pause 2h`" in usage
        assert twin.messenger.deleted == [(501, 50)]

        async def refused(chat: Any, ids: Any) -> int:
            raise TelegramUnavailable("Telegram is unreachable")

        twin.messenger.delete_messages = refused  # type: ignore[method-assign]
        assert await commands.on_owner_text(typed("!tw off", clock, message_id=51))
        account_id = await twin.app[keys.DIRECTORY].id_of("default")
        assert twin.app[keys.SAFETY].mode_of(account_id).value == "off"  # applied anyway
        event = twin.recorder.of("owner.command")[-1].data
        assert (event["applied"], event["deleted"], event["acknowledged"]) == (True, False, True)
        assert twin.messenger.texts("me")[-1].startswith("twin: off on 'default'")
        assert "`!tw on`" in twin.messenger.texts("me")[-1]


def test_the_prefix_is_one_word_or_nothing() -> None:
    from twin.config import load_settings
    from twin.errors import ConfigError

    assert load_settings(None).twin.command_prefix == ".twin"
    assert load_settings(None, twin={"command_prefix": ""}).twin.command_prefix == ""
    with pytest.raises(ConfigError, match=r"twin\.command_prefix: one word without spaces"):
        load_settings(None, twin={"command_prefix": ". twin"})
