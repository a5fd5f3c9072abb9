"""Bots in the sandbox (issue 15, item 1, the protocol part): a bot signed in by token gets a
user's messages, answers with reply and inline keyboards, and answers a button press
(`getBotCallbackAnswer` → `updateBotCallbackQuery` → `setBotCallbackAnswer`), all through the
unmodified Telethon on both sides."""

from __future__ import annotations

import asyncio

import pytest
from telethon import Button, errors, events
from telethon.tl import functions, types

from tests.sandbox.fixtures import SandboxClients
from twin.sandbox import SandboxServer


async def bot_and_user(sandbox: SandboxServer, sandbox_clients: SandboxClients):
    bot_account = sandbox.create_user("15550401", "Shop Bot", username="shop_bot", bot=True)
    sandbox.create_user("15550402", "Ann", username="ann_buyer")
    bot = sandbox_clients.new()
    await bot.connect()
    await bot.sign_in(bot_token=bot_account.bot_token)
    user = await sandbox_clients.signed_in("15550402")
    return bot, user


async def test_a_bot_answers_with_keyboards_and_a_button_press(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    bot, user = await bot_and_user(sandbox, sandbox_clients)
    received: asyncio.Queue = asyncio.Queue()
    presses: asyncio.Queue = asyncio.Queue()

    @bot.on(events.NewMessage(incoming=True))
    async def on_message(event: events.NewMessage.Event) -> None:
        received.put_nowait(event.message)

    @bot.on(events.CallbackQuery())
    async def on_press(event: events.CallbackQuery.Event) -> None:
        presses.put_nowait(event)
        await event.answer("Noted: " + event.data.decode())

    await user.send_message("@shop_bot", "/start")
    start = await asyncio.wait_for(received.get(), 5)
    assert start.message == "/start" and not start.out

    sender = await start.get_sender()
    await bot.send_message(
        sender,
        "Pick a size",
        buttons=[[Button.inline("S", b"size:s"), Button.inline("M", b"size:m")]],
    )
    await bot.send_message(sender, "Or type it", buttons=[Button.text("XL", resize=True)])
    history = await user.get_messages("@shop_bot", limit=2)
    typed, inline = history
    assert isinstance(inline.reply_markup, types.ReplyInlineMarkup)
    assert [b.type.data for b in inline.reply_markup.rows[0].buttons] == [b"size:s", b"size:m"]
    assert isinstance(typed.reply_markup, types.ReplyKeyboardMarkup)
    assert typed.reply_markup.rows[0].buttons[0].text == "XL"

    answer = await inline.click(data=b"size:m")
    press = await asyncio.wait_for(presses.get(), 5)
    assert press.data == b"size:m" and press.sender_id == (await user.get_me()).id
    assert answer.message == "Noted: size:m"

    with pytest.raises(errors.DataInvalidError):
        await inline.click(data=b"size:xxl")  # not one of its buttons


async def test_a_press_the_bot_never_answers_times_out(
    sandbox: SandboxServer, sandbox_clients: SandboxClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    from twin.sandbox import api_bots

    monkeypatch.setattr(api_bots, "CALLBACK_TIMEOUT", 0.2)
    bot, user = await bot_and_user(sandbox, sandbox_clients)
    await user.send_message("@shop_bot", "hi")
    me = await user.get_me()
    await bot.send_message(me.id, "Press", buttons=[Button.inline("Go", b"go")])
    [message] = await user.get_messages("@shop_bot", limit=1)
    assert await message.click(data=b"go") is None  # Telethon's answer to a silent bot
    request = functions.messages.GetBotCallbackAnswerRequest(
        await user.get_input_entity("@shop_bot"), message.id, data=b"go"
    )
    with pytest.raises(errors.BotResponseTimeoutError):
        await user(request)


async def test_a_user_account_cannot_send_a_keyboard(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    _, user = await bot_and_user(sandbox, sandbox_clients)
    await user.send_message("@shop_bot", "Pick", buttons=[Button.inline("A", b"a")])
    [sent] = await user.get_messages("@shop_bot", limit=1)
    assert sent.reply_markup is None  # dropped, as Telegram does


async def test_a_bot_may_not_call_what_telegram_refuses_to_bots(
    sandbox: SandboxServer, sandbox_clients: SandboxClients
) -> None:
    bot, _ = await bot_and_user(sandbox, sandbox_clients)
    with pytest.raises(errors.BotMethodInvalidError):
        await bot.get_dialogs()
    with pytest.raises(errors.BotMethodInvalidError):
        await bot(functions.account.UpdateStatusRequest(offline=False))
    with pytest.raises(errors.BotMethodInvalidError):
        await bot.get_messages("@ann_buyer", limit=5)  # messages.getHistory
