"""`twin demo`: try the twin without a Telegram account.

Starts the sandbox MTProto server (twin.sandbox) in-process, creates an owner and a contact
there, logs the real daemon (create_app: the same pipeline `twin run` runs) in as the owner,
and lets the person type as the contact — or plays a script — showing the twin's read
receipts, typing and replies as the contact's own Telegram client receives them. Everything
lives in a temporary directory that is removed at the end: the user's database, key and
sessions are never touched, and no real Telegram server is ever contacted.
"""

from twin.demo.session import BUILT_IN_SCRIPT, DemoError, run_demo

__all__ = ["BUILT_IN_SCRIPT", "DemoError", "run_demo"]
