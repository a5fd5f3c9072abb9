"""The storage repository: one class composed of one mixin per aggregate.

Every method opens its own short transaction, takes and returns plain values and frozen
records from twin.db.records (never ORM objects), and raises twin.errors.NotFound / Conflict.
"""

from __future__ import annotations

from twin.db.repo.accounts import AccountsMixin
from twin.db.repo.chats import ChatsMixin
from twin.db.repo.messages import MessagesMixin
from twin.db.repo.misc import MiscMixin
from twin.db.repo.replies import RepliesMixin
from twin.db.repo.stats import StatsMixin

__all__ = ["Repository"]


class Repository(AccountsMixin, ChatsMixin, MessagesMixin, RepliesMixin, MiscMixin, StatsMixin):
    """Implements the daemon's storage port on SQLAlchemy (SQLite or PostgreSQL)."""
