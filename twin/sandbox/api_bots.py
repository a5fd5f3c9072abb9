"""Bots in the sandbox: keyboards on their messages and callback queries.

A bot's message may carry `reply_markup` (reply keyboards and inline keyboards; a user
account's is dropped, as Telegram does). A user pressing an inline button calls
`messages.getBotCallbackAnswer`; the bot's sessions get `updateBotCallbackQuery` (pts-less)
and the user's call waits for the bot's `messages.setBotCallbackAnswer`, or fails with
BOT_RESPONSE_TIMEOUT after CALLBACK_TIMEOUT seconds. The waiting call is a deferred result
(an asyncio.Future the connection awaits), so every handler stays synchronous.
"""

from __future__ import annotations

import asyncio
import secrets

from telethon.tl import functions, types

from .rpc import Call, handler
from .state import RpcFailure

CALLBACK_TIMEOUT = 10.0  # Telegram's own wait is of this order


def _callback_data(message: object) -> list[bytes]:
    markup = getattr(message, "reply_markup", None)
    if not isinstance(markup, types.ReplyInlineMarkup):
        return []
    return [
        button.type.data
        for row in markup.rows
        for button in row.buttons
        if isinstance(getattr(button, "type", None), types.InlineButtonTypeCallback)
    ]


@handler(functions.messages.GetBotCallbackAnswerRequest)
def get_bot_callback_answer(
    call: Call, req: functions.messages.GetBotCallbackAnswerRequest
) -> asyncio.Future[types.messages.BotCallbackAnswer]:
    me = call.me()
    bot_id = call.peer_key(req.peer)
    bot = call.world.accounts.get(bot_id)
    if bot is None or not bot.bot:
        raise RpcFailure(400, "PEER_ID_INVALID")
    message = me.messages.get(req.msg_id)
    if message is None:
        raise RpcFailure(400, "MESSAGE_ID_INVALID")
    if req.data is None or req.data not in _callback_data(message):
        raise RpcFailure(400, "DATA_INVALID")
    logical = me.logical_of.get(req.msg_id)
    bot_message_id = call.world.logical.get(logical, {}).get(bot_id) if logical else None
    if bot_message_id is None:
        raise RpcFailure(400, "MESSAGE_ID_INVALID")
    query_id = secrets.randbits(63)
    answer: asyncio.Future[types.messages.BotCallbackAnswer] = (
        asyncio.get_running_loop().create_future()
    )
    call.world.callback_queries[query_id] = answer
    answer.add_done_callback(lambda _: call.world.callback_queries.pop(query_id, None))
    chat_instance = (min(me.id, bot_id) << 20) ^ max(me.id, bot_id)
    update = types.UpdateBotCallbackQuery(
        query_id=query_id,
        user_id=me.id,
        peer=types.PeerUser(me.id),
        msg_id=bot_message_id,
        chat_instance=chat_instance,
        data=req.data,
    )
    call.server.push(bot_id, types.UpdateShort(update, call.world.clock.date()), exclude=None)
    return answer


@handler(functions.messages.SetBotCallbackAnswerRequest)
def set_bot_callback_answer(
    call: Call, req: functions.messages.SetBotCallbackAnswerRequest
) -> bool:
    me = call.me()
    if not me.bot:
        raise RpcFailure(400, "USER_BOT_REQUIRED")
    waiting = call.world.callback_queries.get(req.query_id)
    if waiting is None or waiting.done():
        raise RpcFailure(400, "QUERY_ID_INVALID")
    waiting.set_result(
        types.messages.BotCallbackAnswer(
            cache_time=req.cache_time,
            alert=req.alert,
            message=req.message,
            url=req.url,
        )
    )
    return True
