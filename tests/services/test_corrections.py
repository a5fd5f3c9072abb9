"""Learning from corrections (issue 18 §2): the owner's decisions on drafts are recorded with
their context, and the most similar ones become the prompt's first examples."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from tests.fakes import FakeAccounts, FakeMessenger, ScriptedLLM, WatchedClock, start_twin
from tests.services.conftest import clock  # noqa: F401  (a fixture)
from tests.services.test_drafts import drafted, settings_for
from twin import keys
from twin.db.records_drafts import CorrectionRecord
from twin.services.corrections import pick_examples

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def correction(id_: int, context: str, owner_text: str | None) -> CorrectionRecord:
    kind = "skipped" if owner_text is None else "edited"
    return CorrectionRecord(
        id_, 1, 1, None, kind, context, "twin's text", owner_text, T0, "default", 5
    )


def test_the_most_similar_corrections_come_first() -> None:
    newest_first = [
        correction(5, "Где вы находитесь?", "Петроградка, Большая Пушкарская 41"),
        correction(4, "Сколько стоит замена цепи?", "450 ₽, и за 20 минут"),
        correction(3, "сколько стоит цепь", None),  # skipped: no owner text, never an example
        correction(2, "Какая цена на замену цепи и покрышки?", "Цепь 450, покрышка 350"),
        correction(1, "How much is a tune-up?", "2,500 RUB"),
    ]
    # Another word form of the same words ("заменить цепь" / "замена цепи") still meets them.
    picked = pick_examples(newest_first, "А сколько будет стоить заменить цепь?", k=2)
    assert picked == [
        ("Сколько стоит замена цепи?", "450 ₽, и за 20 минут"),
        ("Какая цена на замену цепи и покрышки?", "Цепь 450, покрышка 350"),
    ]
    assert pick_examples(newest_first, "hello there", k=3) == []  # nothing alike: no example
    assert pick_examples([], "anything") == []


async def test_an_edited_draft_teaches_the_next_answer_and_the_owner_can_forget_it(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    llm = ScriptedLLM(default="Drafted.")
    settings = settings_for(engine_url, tmp_path)
    accounts = FakeAccounts(FakeMessenger())
    async with start_twin(settings, clock=clock, accounts=accounts, llm=llm) as twin:
        drafts = twin.app[keys.DRAFTS]
        first = await drafted(twin, 31, "сколько стоит замена цепи?")
        await drafts.send(first["draft"], "Цепь меняем за 450 ₽, минут за 20 :)")
        skipped = await drafted(twin, 32, "вы работаете в воскресенье?", count=2)
        await drafts.skip(skipped["draft"])
        found = await twin.repo.corrections(limit=10)
        assert [(c.kind, c.context, c.owner_text) for c in found] == [
            ("skipped", "вы работаете в воскресенье?", None),
            ("edited", "сколько стоит замена цепи?", "Цепь меняем за 450 ₽, минут за 20 :)"),
        ]

        owner_said = "Цепь меняем за 450 ₽, минут за 20 :)"

        def shown() -> int:  # in the chat's own history once; as an example, once more
            return sum(m.role == "assistant" and m.content == owner_said for m in llm.calls[-1])

        # Another contact asking the same never sees what this one was told (scope: chat).
        await drafted(twin, 33, "а цепь заменить сколько будет стоить?", count=3)
        assert shown() == 0
        await drafted(twin, 31, "а цепь заменить сколько будет стоить?", count=4)
        assert shown() == 2  # the owner's own answer leads the prompt, before the history

        await twin.repo.delete_correction(found[1].account_id, found[1].id)
        twin.app[keys.SERVICES]["pipeline"].generator.forget_corrections(found[1].account_id)
        await drafted(twin, 31, "а цепь заменить сколько будет стоить?", count=5)
        assert shown() == 1  # forgotten: only the chat's history has it


async def test_the_owner_writing_right_after_the_twin_is_a_correction_once(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    """`followed_up`: the twin's text then the owner's — once (the owner's second message
    follows their own), within `followup_minutes`, and never after a draft the owner sent."""
    from tests.fakes import incoming, owner_wrote

    messenger = FakeMessenger()  # its sent messages get ids from 1000: the owner's are later
    llm = ScriptedLLM("Yes, bring it.", "We close at 8.", "Sure.")
    settings = settings_for(engine_url, tmp_path, mode="auto", followup_minutes=5)
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:

        async def answered(text: str, message_id: int) -> None:
            message = incoming(text, chat=71, at=clock.now(), message_id=message_id)
            assert await twin.intake.incoming(message)
            await twin.recorder.wait_for("reply.sent", count=len(messenger.texts(71)) + 1)

        async def owner(text: str, message_id: int) -> None:
            await twin.intake.owner_activity(
                owner_wrote(chat=71, at=clock.now(), message_id=message_id, text=text)
            )

        async def kinds() -> list[tuple[str, str | None]]:
            found = await twin.repo.corrections(await twin.app[keys.DIRECTORY].id_of("default"))
            return [(c.kind, c.owner_text) for c in found]

        await answered("should I bring the receipt?", 10)
        await owner("and the box too", 5000)
        assert await kinds() == [("followed_up", "Yes, bring it.\nand the box too")]
        await owner("thanks!", 5001)  # follows the owner's own message
        assert len(await kinds()) == 1

        await clock.advance(3600)  # the takeover's pause ends
        await answered("when do you close?", 11)
        await clock.advance(6 * 60)  # later than followup_minutes
        await owner("and on Sundays at 6", 5002)
        assert len(await kinds()) == 1


async def test_no_followed_up_after_a_draft_the_owner_sent(
    engine_url: str,  # noqa: F811
    tmp_path: Any,
    clock: WatchedClock,  # noqa: F811
) -> None:
    from tests.fakes import owner_wrote

    messenger = FakeMessenger()
    settings = settings_for(engine_url, tmp_path, followup_minutes=5)  # draft mode
    llm = ScriptedLLM("Yes, bring it.")
    async with start_twin(settings, clock=clock, accounts=FakeAccounts(messenger), llm=llm) as twin:
        draft = await drafted(twin, 72, "should I bring the receipt?")
        await twin.app[keys.DRAFTS].send(draft["draft"])
        await twin.recorder.wait_for("reply.sent")
        await twin.intake.owner_activity(
            owner_wrote(chat=72, at=clock.now(), message_id=5000, text="and the box too")
        )
        found = await twin.repo.corrections(await twin.app[keys.DIRECTORY].id_of("default"))
        assert [c.kind for c in found] == ["approved"]  # the sent text was the owner's already
