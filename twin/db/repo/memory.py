"""Memory of each contact: the people a twin recognises across channels, what they told it,
its open promises, and the per-chat cursor of extraction (a compare-and-set, so two processes
never store the same conversation's facts twice)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.lean import prepared
from twin.db.records import ChatRecord
from twin.db.records_knowledge import ContactRecord, FactRecord, QuietChat
from twin.db.repo._base import RepoBase
from twin.db.repo.twins import ACCOUNT_TWIN
from twin.db.tables import Account, Chat, Message, Reply, Twin
from twin.db.tables_knowledge import Contact, ContactFact
from twin.domain.memory import Person, person_of
from twin.errors import NotFound

A = Account.__table__
C = Chat.__table__
M = Message.__table__
R = Reply.__table__
T = Twin.__table__
P = Contact.__table__
F = ContactFact.__table__

REMEMBERED = ("fact", "preference", "date", "promise")  # given to the prompt, with followups


# The hot path of every reply (prepared: compiled once, run leanly on SQLite's own cursor).
_CHAT_PERSON = prepared(
    sa.select(C.c.peer_id, C.c.kind, C.c.channel_data, A.c.channel, T.c.id.label("twin_id"))
    .select_from(C.join(A, A.c.id == C.c.account_id).join(T, ACCOUNT_TWIN))
    .where(C.c.id == sa.bindparam("_chat_id"))
)
_FIND_CONTACT = prepared(
    sa.select(P)
    .where(
        P.c.twin_id == sa.bindparam("_twin_id"),
        sa.or_(P.c.telegram_user_id == sa.bindparam("_user"), P.c.phone == sa.bindparam("_phone")),
    )
    .order_by(P.c.id)
    .limit(1)
)
_OPEN_FACTS = prepared(
    sa.select(F)
    .where(
        F.c.contact_id == sa.bindparam("_contact_id"),
        sa.or_(F.c.kind != "followup", F.c.done_at.is_(None)),
    )
    .order_by(F.c.created_at, F.c.id)
)


class MemoryMixin(RepoBase):
    # -- who -----------------------------------------------------------------------------------
    def _find_contact(self, c: Connection, twin_id: int, person: Person) -> Any:
        if not person:
            return None
        values = {"_twin_id": twin_id, "_user": person.telegram_user_id, "_phone": person.phone}
        return c.execute(_FIND_CONTACT, values).first()

    def _contact(self, c: Connection, twin_id: int, person: Person, name: str | None) -> int:
        """The person's contact row (created, or completed with an identifier it lacked)."""
        row = self._find_contact(c, twin_id, person)
        if row is None:
            return c.execute(
                sa.insert(P)
                .values(
                    twin_id=twin_id,
                    telegram_user_id=person.telegram_user_id,
                    phone=person.phone,
                    name=name,
                )
                .returning(P.c.id)
            ).scalar_one()
        updates: dict[str, Any] = {}
        if row.telegram_user_id is None and person.telegram_user_id is not None:
            taken = self._find_contact(c, twin_id, Person(person.telegram_user_id, None))
            if taken is None:
                updates["telegram_user_id"] = person.telegram_user_id
        if (
            row.phone is None
            and person.phone is not None
            and self._find_contact(c, twin_id, Person(None, person.phone)) is None
        ):
            updates["phone"] = person.phone
        if name and not row.name:
            updates["name"] = name
        if updates:
            c.execute(sa.update(P).where(P.c.id == row.id).values(**updates))
        return row.id

    def _chat_person(self, c: Connection, chat_id: int) -> tuple[int, Person] | None:
        """The twin of the chat's account and the chat's person."""
        row = c.execute(_CHAT_PERSON, {"_chat_id": chat_id}).first()
        if row is None:
            return None
        return row.twin_id, person_of(row.channel, row.peer_id, row.kind, row.channel_data or {})

    # -- the prompt ----------------------------------------------------------------------------
    async def memory_for_chat(self, chat_id: int) -> list[FactRecord]:
        """What the twin remembers about the person of this chat (on any channel), oldest
        first: their facts and the twin's open promises to them."""

        return await self._read(lambda c: self._memory_for_chat(c, chat_id))

    def _memory_for_chat(self, c: Connection, chat_id: int) -> list[FactRecord]:
        found = self._chat_person(c, chat_id)
        if found is None:
            return []
        contact = self._find_contact(c, *found)
        if contact is None:
            return []
        rows = c.execute(_OPEN_FACTS, {"_contact_id": contact.id})
        return [FactRecord.from_row(row._mapping) for row in rows]

    def _facts(self, c: Connection, contact_id: int) -> list[FactRecord]:
        query = sa.select(F).where(F.c.contact_id == contact_id)
        rows = c.execute(query.order_by(F.c.created_at, F.c.id))
        return [FactRecord.from_row(row._mapping) for row in rows]

    # -- extraction ----------------------------------------------------------------------------
    async def quiet_chats(self, quiet_since: datetime, limit: int) -> list[QuietChat]:
        """Conversations silent since `quiet_since` with messages newer than their extraction
        cursor that the twin answered since then (a chat it does not answer — excluded, a
        group, the owner's own — is never read), oldest silence first."""
        last = sa.func.coalesce(C.c.last_outgoing_at, C.c.last_incoming_at)
        answered = (
            sa.exists()
            .where(R.c.chat_id == C.c.id, R.c.state == "sent")
            .where(sa.or_(C.c.memory_at.is_(None), R.c.finished_at > C.c.memory_at))
        )
        query = (
            sa.select(C, A.c.channel.label("_channel"), T.c.id.label("_twin_id"))
            .select_from(C.join(A, A.c.id == C.c.account_id).join(T, ACCOUNT_TWIN))
            .where(
                C.c.last_incoming_at.is_not(None),
                C.c.last_incoming_at < quiet_since,
                sa.or_(C.c.last_outgoing_at.is_(None), C.c.last_outgoing_at < quiet_since),
                sa.or_(C.c.memory_at.is_(None), C.c.memory_at < C.c.last_incoming_at),
                answered,
            )
            .order_by(last, C.c.id)
            .limit(limit)
        )

        def work(c: Connection) -> list[QuietChat]:
            out = []
            for row in c.execute(query):
                chat = ChatRecord.from_row(row._mapping)
                person = person_of(row._channel, chat.peer_id, chat.kind, chat.channel_data)
                out.append(QuietChat(chat, row._twin_id, person, row.memory_upto_message_id))
            return out

        return await self._read(work)

    async def memory_turns(
        self, chat_id: int, after_id: int | None, limit: int
    ) -> list[tuple[int, str, str, datetime]]:
        """The chat's messages after the cursor, oldest first (at most the newest `limit`):
        (id, "contact" | "owner", text or transcript, date); unsent bubbles left out."""
        query = (
            sa.select(M.c.id, M.c.direction, M.c.state, M.c.text, M.c.transcript, M.c.date)
            .where(M.c.chat_id == chat_id, M.c.id > (after_id or 0))
            .order_by(M.c.id.desc())
            .limit(limit)
        )

        def work(c: Connection) -> list[tuple[int, str, str, datetime]]:
            out = []
            for row in c.execute(query):
                if row.direction == "outgoing" and row.state != "sent":
                    continue
                text = row.transcript or row.text or ""
                if text.strip():
                    role = "contact" if row.direction == "incoming" else "owner"
                    out.append((row.id, role, text, row.date))
            return out[::-1]

        return await self._read(work)

    async def store_memory(
        self,
        quiet: QuietChat,
        learned: Sequence[tuple[str, str, int | None]],
        upto: tuple[int, datetime],
        *,
        max_facts: int,
    ) -> int:
        """Store what was learnt from the chat (kind, text, source message id) for its person
        and move the chat's cursor to `upto` (message id, date), in one transaction; nothing
        when another process moved the cursor first. Returns how many facts were stored."""
        stored = await self._run(
            lambda c: self._store_memory(c, quiet, learned, upto, max_facts=max_facts)
        )
        return len(stored)

    def _store_memory(
        self,
        c: Connection,
        quiet: QuietChat,
        learned: Sequence[tuple[str, str, int | None]],
        upto: tuple[int, datetime],
        *,
        max_facts: int,
    ) -> list[str]:
        """`store_memory` inside a transaction: the kinds of the facts stored, one per fact."""
        moved = c.execute(
            sa.update(C)
            .where(
                C.c.id == quiet.chat.id,
                C.c.memory_upto_message_id.is_(None)
                if quiet.cursor is None
                else C.c.memory_upto_message_id == quiet.cursor,
            )
            .values(memory_upto_message_id=upto[0], memory_at=upto[1])
        ).rowcount
        if not moved or not learned or not quiet.person:
            return []
        contact_id = self._contact(c, quiet.twin_id, quiet.person, quiet.chat.title)
        known = {
            (row.kind, row.text.casefold())
            for row in c.execute(sa.select(F.c.kind, F.c.text).where(F.c.contact_id == contact_id))
        }
        rows = [
            {
                "contact_id": contact_id,
                "kind": kind,
                "text": text,
                "chat_id": quiet.chat.id,
                "message_id": message_id,
            }
            for kind, text, message_id in learned
            if (kind, text.casefold()) not in known
        ]
        if rows:
            c.execute(sa.insert(F), rows)
        self._trim(c, contact_id, max_facts)
        return [row["kind"] for row in rows]

    def _trim(self, c: Connection, contact_id: int, max_facts: int) -> None:
        """Keep the newest `max_facts` remembered facts (followups are the owner's to close)."""
        stale = (
            sa.select(F.c.id)
            .where(F.c.contact_id == contact_id, F.c.kind.in_(REMEMBERED))
            .order_by(F.c.created_at.desc(), F.c.id.desc())
            .offset(max_facts)
        )
        ids = list(c.execute(stale).scalars())
        if ids:
            c.execute(sa.delete(F).where(F.c.id.in_(ids)))

    # -- the owner's view ----------------------------------------------------------------------
    async def list_contacts(self, twin_id: int | None = None) -> list[ContactRecord]:
        query = sa.select(P).order_by(P.c.id)
        if twin_id is not None:
            query = query.where(P.c.twin_id == twin_id)
        return await self._read(
            lambda c: [ContactRecord.from_row(row._mapping) for row in c.execute(query)]
        )

    async def contact_memory(self, contact_id: int) -> tuple[ContactRecord, list[FactRecord]]:
        def work(c: Connection) -> tuple[ContactRecord, list[FactRecord]]:
            row = c.execute(sa.select(P).where(P.c.id == contact_id)).first()
            if row is None:
                raise NotFound(f"no contact {contact_id}")
            return ContactRecord.from_row(row._mapping), self._facts(c, contact_id)

        return await self._read(work)

    async def replace_contact_memory(
        self, contact_id: int, facts: Sequence[tuple[str, str]]
    ) -> tuple[ContactRecord, list[FactRecord]]:
        """The owner's edit: the contact's facts become `facts` (kind, text). A fact kept
        unchanged keeps its source message; the rest are new, with no source."""

        def work(c: Connection) -> tuple[ContactRecord, list[FactRecord]]:
            row = c.execute(sa.select(P).where(P.c.id == contact_id)).first()
            if row is None:
                raise NotFound(f"no contact {contact_id}")
            wanted = list(dict.fromkeys((kind, text) for kind, text in facts))
            current = self._facts(c, contact_id)
            keep = {(f.kind, f.text) for f in current} & set(wanted)
            gone = [f.id for f in current if (f.kind, f.text) not in keep]
            if gone:
                c.execute(sa.delete(F).where(F.c.id.in_(gone)))
            new = [
                {"contact_id": contact_id, "kind": kind, "text": text}
                for kind, text in wanted
                if (kind, text) not in keep
            ]
            if new:
                c.execute(sa.insert(F), new)
            return ContactRecord.from_row(row._mapping), self._facts(c, contact_id)

        return await self._run(work)

    async def followups(self, twin_id: int | None = None) -> list[tuple[FactRecord, ContactRecord]]:
        """The twin's open promises, oldest first, each with its contact."""
        query = (
            sa.select(F, *(col.label(f"_c_{col.name}") for col in P.c))
            .join(P, P.c.id == F.c.contact_id)
            .where(F.c.kind == "followup", F.c.done_at.is_(None))
            .order_by(F.c.created_at, F.c.id)
        )
        if twin_id is not None:
            query = query.where(P.c.twin_id == twin_id)

        def work(c: Connection) -> list[tuple[FactRecord, ContactRecord]]:
            out = []
            for row in c.execute(query):
                mapping = row._mapping
                contact = {col.name: mapping[f"_c_{col.name}"] for col in P.c}
                out.append((FactRecord.from_row(mapping), ContactRecord.from_row(contact)))
            return out

        return await self._read(work)

    async def close_followup(self, fact_id: int) -> None:
        def work(c: Connection) -> None:
            done = c.execute(
                sa.update(F)
                .where(F.c.id == fact_id, F.c.kind == "followup", F.c.done_at.is_(None))
                .values(done_at=self._clock.now())
            ).rowcount
            if not done:
                raise NotFound(f"no open follow-up {fact_id}")

        await self._run(work)
