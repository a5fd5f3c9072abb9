"""Accounts and their Telegram session (encrypted auth key, update state) and entity cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records import AccountRecord, AccountStatus, EntityRecord
from twin.db.repo._base import RepoBase, check_fields, chunks
from twin.db.tables import Account, Entity
from twin.errors import Conflict, NotFound

A = Account.__table__
E = Entity.__table__

_ACCOUNT_COLUMNS = [c for c in A.c if c.name not in ("session_data", "update_state")]
_ACCOUNT_FIELDS = ("phone", "tg_user_id", "username", "first_name", "status", "enabled", "channel")
_ENTITY_FIELDS = ("access_hash", "username", "phone", "name")


def _account_select() -> sa.Select[Any]:
    return sa.select(*_ACCOUNT_COLUMNS, A.c.session_data.is_not(None).label("has_session"))


def _normalise_phone(phone: str | None) -> str | None:
    return phone.strip().lstrip("+").replace(" ", "") if phone else phone


class AccountsMixin(RepoBase):
    # --- accounts --------------------------------------------------------------------------

    async def get_or_create_account(self, name: str) -> AccountRecord:
        def work(connection: Connection) -> AccountRecord:
            insert = self._insert(connection, A).values(name=name)
            connection.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            row = connection.execute(_account_select().where(A.c.name == name)).one()
            return AccountRecord.from_row(row._mapping)

        return await self._run(work)

    async def channel_instance(self, name: str, channel: str) -> AccountRecord:
        """The instance `name` of a channel other than Telegram (created if absent): its
        conversations are chats of this account row. Conflict when `name` is another
        channel's (e.g. a Telegram account of that name)."""

        def work(connection: Connection) -> AccountRecord:
            insert = self._insert(connection, A).values(name=name, channel=channel)
            connection.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            row = connection.execute(_account_select().where(A.c.name == name)).one()
            return AccountRecord.from_row(row._mapping)

        record = await self._run(work)
        if record.channel != channel:
            raise Conflict(
                f"'{name}' is a {record.channel} account: choose another name for the "
                f"{channel} channel"
            )
        return record

    async def get_account(self, name: str) -> AccountRecord:
        def work(connection: Connection) -> AccountRecord:
            row = connection.execute(_account_select().where(A.c.name == name)).first()
            if row is None:
                raise NotFound(f"account '{name}' does not exist")
            return AccountRecord.from_row(row._mapping)

        return await self._read(work)

    async def list_accounts(self) -> list[AccountRecord]:
        def work(connection: Connection) -> list[AccountRecord]:
            rows = connection.execute(_account_select().order_by(A.c.id))
            return [AccountRecord.from_row(row._mapping) for row in rows]

        return await self._read(work)

    async def update_account(self, name: str, **fields: Any) -> AccountRecord:
        """Set profile fields (phone, tg_user_id, username, first_name, status, enabled)."""
        check_fields(fields, _ACCOUNT_FIELDS, "update_account")
        if "status" in fields:
            fields["status"] = AccountStatus(fields["status"]).value
        return await self._update_account(name, fields)

    async def _update_account(self, name: str, values: Mapping[str, Any]) -> AccountRecord:
        if not values:
            return await self.get_account(name)

        def work(connection: Connection) -> AccountRecord:
            result = connection.execute(sa.update(A).where(A.c.name == name).values(**values))
            if result.rowcount == 0:
                raise NotFound(f"account '{name}' does not exist")
            # Read back with a SELECT: SQLite 3.40 miscomputes `x IS NOT NULL` in RETURNING.
            row = connection.execute(_account_select().where(A.c.name == name)).one()
            return AccountRecord.from_row(row._mapping)

        return await self._run(work)

    # --- session data ----------------------------------------------------------------------

    async def save_session(self, name: str, data: bytes) -> None:
        """Store the Telegram session blob (auth key, dc, server) encrypted for this account."""
        await self._update_account(name, {"session_data": self._cipher.encrypt(data, account=name)})

    async def load_session(self, name: str) -> bytes | None:
        """The decrypted session blob, or None when none is stored; SessionDecryptError if the
        key is wrong or the stored data does not belong to this account."""
        blob = await self._account_column(name, A.c.session_data)
        return None if blob is None else self._cipher.decrypt(blob, account=name)

    async def save_update_state(self, name: str, state: Mapping[str, Any]) -> None:
        """Persist the updates state (pts, qts, date, seq, per-channel pts): not secret."""
        await self._update_account(name, {"update_state": dict(state)})

    async def load_update_state(self, name: str) -> dict[str, Any] | None:
        return await self._account_column(name, A.c.update_state)

    async def delete_session(self, name: str) -> AccountRecord:
        """Forget the session and update state and mark the account logged out."""
        return await self._update_account(
            name,
            {
                "session_data": None,
                "update_state": None,
                "status": AccountStatus.LOGGED_OUT.value,
            },
        )

    def _delete_account(self, c: Connection, name: str) -> None:
        """Delete the account and everything it owns: its chats, messages, replies, settings,
        style profile and events go with it (ON DELETE CASCADE). NotFound if unknown."""
        if c.execute(sa.delete(A).where(A.c.name == name)).rowcount == 0:
            raise NotFound(f"account '{name}' does not exist")

    async def _account_column(self, name: str, column: sa.Column[Any]) -> Any:
        def work(connection: Connection) -> Any:
            row = connection.execute(sa.select(column).where(A.c.name == name)).first()
            if row is None:
                raise NotFound(f"account '{name}' does not exist")
            return row[0]

        return await self._read(work)

    # --- entity cache ----------------------------------------------------------------------

    async def upsert_entities(self, account_id: int, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert or refresh cached entities: mappings with `entity_id` and any of access_hash,
        username, phone, name. Usernames are stored lower-case, phones without '+'.
        Returns how many distinct entities were written."""
        latest: dict[int, dict[str, Any]] = {}
        for row in rows:
            check_fields(row, ("entity_id", *_ENTITY_FIELDS), "upsert_entities")
            entity_id = int(row["entity_id"])
            values = {field: row.get(field) for field in _ENTITY_FIELDS}
            values["username"] = values["username"].lower() if values["username"] else None
            values["phone"] = _normalise_phone(values["phone"]) or None
            latest[entity_id] = {"account_id": account_id, "entity_id": entity_id, **values}
        if not latest:
            return 0
        items = list(latest.values())

        def work(connection: Connection) -> None:
            for chunk in chunks(items):
                insert = self._insert(connection, E).values(list(chunk))
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=["account_id", "entity_id"],
                        set_={
                            **{field: insert.excluded[field] for field in _ENTITY_FIELDS},
                            "updated_at": self._clock.now(),
                        },
                    )
                )

        await self._run(work)
        return len(items)

    async def get_entity(
        self,
        account_id: int,
        *,
        entity_id: int | None = None,
        username: str | None = None,
        phone: str | None = None,
    ) -> EntityRecord | None:
        """Cache lookup by exactly one key; None when the entity is not cached."""
        keys = [key for key in (entity_id, username, phone) if key is not None]
        if len(keys) != 1:
            raise TypeError("get_entity: pass exactly one of entity_id, username, phone")
        query = sa.select(E).where(E.c.account_id == account_id)
        if entity_id is not None:
            query = query.where(E.c.entity_id == entity_id)
        elif username is not None:
            query = query.where(E.c.username == username.lstrip("@").lower())
        else:
            query = query.where(E.c.phone == _normalise_phone(phone))
        query = query.order_by(E.c.updated_at.desc(), E.c.id.desc()).limit(1)

        def work(connection: Connection) -> EntityRecord | None:
            row = connection.execute(query).first()
            return None if row is None else EntityRecord.from_row(row._mapping)

        return await self._read(work)

    async def list_entities(self, account_id: int) -> list[EntityRecord]:
        """The whole entity cache of an account (loaded once when its Telethon session opens)."""
        query = sa.select(E).where(E.c.account_id == account_id).order_by(E.c.entity_id)

        def work(connection: Connection) -> list[EntityRecord]:
            return [EntityRecord.from_row(row._mapping) for row in connection.execute(query)]

        return await self._read(work)
