"""The reply pipeline's steps, one job each (twin.services.replies composes them):

    plan       store the message once, decide (pure), persist the job: one transaction
    generate   conversation + style + memory → prompt → brain → structured flags → a Draft
    deliver    a channel's delivery (deliver.Delivery; Telegram's in telegram_delivery)

and beside them: execute (one job from its claim to its next resting state), outcome (skip,
cancel, fail, retry later, escalate), takeover (owner activity, edits, deletions), caches
(behaviour and style), fastpath (the one named performance shortcut), runs (jobs in flight).

Nothing is imported here: twin.services.chats imports the leaf modules (states, runs).
"""
