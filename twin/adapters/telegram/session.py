"""A Telethon session kept in our database (the pattern of telethon/sessions/abstract.py).

The session lives in memory (MemorySession), loaded from the database before the client is
built. Unlike a StringSession it persists the update state
(pts/qts/date/seq) and the entity cache, which is what makes catch-up after a restart work.

Telethon's own writes are synchronous calls to `save()`; the database write runs beside them in
one coalescing task, and the account awaits `flush()` after login and on stop.

The auth key and data-centre address are encrypted by the store; update state and entities are not
secret (ids and access hashes without a key are useless) and are stored in clear for debugging.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
from typing import Any, Protocol

from telethon.crypto import AuthKey
from telethon.sessions import MemorySession
from telethon.tl import types


class SessionStore(Protocol):
    """What the session needs from storage (implemented by twin.db.repo.Repository)."""

    async def load_session(self, account: str) -> bytes | None: ...
    async def save_session(self, account: str, data: bytes) -> None: ...
    async def delete_session(self, account: str) -> None: ...
    async def load_update_state(self, account: str) -> dict[str, Any] | None: ...
    async def save_update_state(self, account: str, state: dict[str, Any]) -> None: ...
    async def load_entities(
        self, account: str
    ) -> list[tuple[int, int, str | None, str | None, str | None]]: ...
    async def upsert_entities(
        self, account: str, rows: list[tuple[int, int, str | None, str | None, str | None]]
    ) -> None: ...


class DatabaseSession(MemorySession):
    """`keep_update_state`: never overwrite an update state that was stored before (a client
    that does not take in updates — the CLI's — must leave catching up to the daemon)."""

    def __init__(
        self, store: SessionStore, account: str, *, keep_update_state: bool = False
    ) -> None:
        super().__init__()
        self._store = store
        self._account = account
        self._keep_update_state = keep_update_state
        self._erased = False
        self._saved_blob: bytes | None = None
        self._saved_states: dict[str, Any] | None = None
        self._saved_entities: set[tuple[Any, ...]] = set()
        self._dirty = False
        self._writer: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, store: SessionStore, account: str, *, keep_update_state: bool = False
    ) -> DatabaseSession:
        session = cls(store, account, keep_update_state=keep_update_state)
        await session.load()
        return session

    async def load(self) -> None:
        blob = await self._store.load_session(self._account)
        if blob:
            data = json.loads(blob)
            self.set_dc(data["dc_id"], data["server_address"], data["port"])
            if data.get("auth_key"):
                self._auth_key = AuthKey(base64.b64decode(data["auth_key"]))
            self._takeout_id = data.get("takeout_id")
            self._saved_blob = blob
        states = await self._store.load_update_state(self._account) or {}
        for entity_id, state in states.items():
            self._update_states[int(entity_id)] = types.updates.State(
                pts=state["pts"],
                qts=state["qts"],
                date=dt.datetime.fromtimestamp(state["date"], dt.UTC),
                seq=state["seq"],
                unread_count=0,
            )
        self._saved_states = states
        rows = await self._store.load_entities(self._account)
        self._entities = {tuple(row) for row in rows}
        self._saved_entities = set(self._entities)

    @property
    def authorized_key(self) -> bool:
        return self._auth_key is not None

    def _blob(self) -> bytes:
        key = self._auth_key.key if self._auth_key is not None else None
        return json.dumps(
            {
                "dc_id": self._dc_id,
                "server_address": self._server_address,
                "port": self._port,
                "auth_key": base64.b64encode(key).decode() if key else None,
                "takeout_id": self._takeout_id,
            },
            sort_keys=True,
        ).encode()

    def _states(self) -> dict[str, Any]:
        return {
            str(entity_id): {
                "pts": state.pts,
                "qts": state.qts,
                "date": int(state.date.timestamp()) if state.date else 0,
                "seq": state.seq,
            }
            for entity_id, state in self._update_states.items()
        }

    def save(self) -> None:
        """Schedule a write of whatever changed (Telethon calls this every minute and on
        connect/disconnect). Writes are coalesced by one background task; `flush()` awaits it.

        Synchronous on purpose: Telethon supports coroutine session methods only as an
        "experimental feature", so the database write happens beside it, not inside it.
        """
        if self._erased:
            return  # logged out: nothing of this session may be written again
        self._dirty = True
        if self._writer is None or self._writer.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop (interpreter shutdown): the next flush() writes it
            self._writer = loop.create_task(self._write_changes(), name=f"session {self._account}")

    async def flush(self) -> None:
        """Persist everything now (after login, on stop)."""
        self._dirty = True
        if self._writer is not None and not self._writer.done():
            await self._writer
        await self._write_changes()

    async def _write_changes(self) -> None:
        while self._dirty:
            self._dirty = False
            blob = self._blob()
            if blob != self._saved_blob:
                await self._store.save_session(self._account, blob)
                self._saved_blob = blob
            states = self._states()
            if states != self._saved_states and not (
                self._keep_update_state and self._saved_states
            ):
                await self._store.save_update_state(self._account, states)
                self._saved_states = states
            new_entities = self._entities - self._saved_entities
            if new_entities:
                await self._store.upsert_entities(self._account, sorted(new_entities, key=repr))
                self._saved_entities |= new_entities

    def close(self) -> None:
        self.save()

    async def erase(self) -> None:
        """Forget the session for good (logout): pending writes finish first, none follow.

        Not Telethon's `delete()`: Telethon awaits a coroutine session method only on its
        "experimental" async-session path (with a warning), so the account logs out itself and
        calls this."""
        self._erased = True
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception):
                await self._writer
        await self._store.delete_session(self._account)
        self._auth_key = None
        self._update_states.clear()
        self._entities.clear()
        self._saved_blob = None
        self._saved_states = None
        self._saved_entities = set()
