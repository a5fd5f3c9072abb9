"""updates.getState / updates.getDifference: how an offline or gapped client catches up.

Why: the per-account update log (state.Account.log) is replayed from the client's pts. New
messages go to `new_messages` (Telethon turns them into NewMessage events), everything else
to `other_updates`; long backlogs are cut into differenceSlice pages the client keeps asking
for. Since pts starts at 1 and only ever grows, a client never mistakes its state for
"unknown" (MTPROTO-SANDBOX-NOTES.md §5).
"""

from __future__ import annotations

from telethon.tl import functions, types

from .rpc import Call, handler

#: Entries per getDifference page; above it the answer is a differenceSlice.
DIFFERENCE_PAGE = 1000


def _state(call: Call, pts: int) -> types.updates.State:
    me = call.me()
    unread = sum(me.unread_count(d) for d in me.dialogs.values())
    return types.updates.State(
        pts=pts, qts=0, date=call.world.clock.date(), seq=0, unread_count=unread
    )


@handler(functions.updates.GetStateRequest)
def get_state(call: Call, _req: object) -> types.updates.State:
    return _state(call, call.me().pts)


@handler(functions.updates.GetDifferenceRequest)
def get_difference(call: Call, req: functions.updates.GetDifferenceRequest) -> object:
    me = call.me()
    limit = min(req.pts_total_limit or DIFFERENCE_PAGE, DIFFERENCE_PAGE)
    entries, reached = call.world.difference(me, req.pts, limit)
    if not entries:
        return types.updates.DifferenceEmpty(date=call.world.clock.date(), seq=0)
    new_messages, other_updates = [], []
    for entry in entries:
        if isinstance(entry.update, types.UpdateNewMessage):
            new_messages.append(entry.update.message)
        else:
            other_updates.append(entry.update)
    users, chats = call.world.entities_of(me.id, [*new_messages, *other_updates])
    common = {
        "new_messages": new_messages,
        "new_encrypted_messages": [],
        "other_updates": other_updates,
        "chats": chats,
        "users": users,
    }
    if reached < me.pts:
        return types.updates.DifferenceSlice(intermediate_state=_state(call, reached), **common)
    return types.updates.Difference(state=_state(call, reached), **common)
