"""The owner's corrections: recorded with the decision on a draft (one transaction), listed and
deleted by the owner, and read (the newest of an account) to pick the prompt's examples; and
the stored style evaluations."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from twin.db.records_drafts import CorrectionRecord, StyleEvalRecord
from twin.db.repo._base import RepoBase
from twin.db.tables import Account, Chat
from twin.db.tables_corrections import Correction, StyleEval
from twin.errors import NotFound

R = Correction.__table__
A = Account.__table__
C = Chat.__table__
E = StyleEval.__table__

_LISTED = sa.select(R, A.c.name.label("account"), C.c.peer_id).select_from(
    R.join(A, A.c.id == R.c.account_id).join(C, C.c.id == R.c.chat_id)
)


class CorrectionsMixin(RepoBase):
    def _record_correction(
        self,
        c: Connection,
        account_id: int,
        chat_id: int,
        kind: str,
        *,
        context: str,
        twin_text: str,
        owner_text: str | None,
        draft_id: int | None = None,
    ) -> int:
        return c.execute(
            sa.insert(R)
            .values(
                account_id=account_id,
                chat_id=chat_id,
                draft_id=draft_id,
                kind=kind,
                context=context,
                twin_text=twin_text,
                owner_text=owner_text,
            )
            .returning(R.c.id)
        ).scalar_one()

    async def corrections(
        self,
        account_id: int | None = None,
        *,
        limit: int = 100,
        examples: bool = False,
        chat_id: int | None = None,
    ) -> list[CorrectionRecord]:
        """Newest first; `examples`: only those with the owner's text (what the prompt uses)."""
        query = _LISTED.order_by(R.c.id.desc()).limit(limit)
        if account_id is not None:
            query = query.where(R.c.account_id == account_id)
        if chat_id is not None:
            query = query.where(R.c.chat_id == chat_id)
        if examples:
            query = query.where(R.c.owner_text.is_not(None))
        return await self._read(
            lambda c: [CorrectionRecord.from_row(row._mapping) for row in c.execute(query)]
        )

    async def delete_correction(self, account_id: int, correction_id: int) -> None:
        def work(c: Connection) -> None:
            deleted = c.execute(
                sa.delete(R).where(R.c.id == correction_id, R.c.account_id == account_id)
            ).rowcount
            if not deleted:
                raise NotFound(f"no correction {correction_id}")

        await self._run(work)

    async def add_style_eval(
        self,
        account_id: int,
        *,
        model: str,
        samples: int,
        score: int,
        result: dict[str, Any],
        report_path: str | None,
    ) -> int:
        return await self._run(
            lambda c: c.execute(
                sa.insert(E)
                .values(
                    account_id=account_id,
                    model=model,
                    samples=samples,
                    score=score,
                    result=result,
                    report_path=report_path,
                )
                .returning(E.c.id)
            ).scalar_one()
        )

    async def style_evals(
        self, account_id: int | None = None, *, limit: int = 20
    ) -> list[StyleEvalRecord]:
        """Newest first."""
        query = (
            sa.select(E, A.c.name.label("account"))
            .select_from(E.join(A, A.c.id == E.c.account_id))
            .order_by(E.c.id.desc())
            .limit(limit)
        )
        if account_id is not None:
            query = query.where(E.c.account_id == account_id)
        return await self._read(
            lambda c: [StyleEvalRecord.from_row(row._mapping) for row in c.execute(query)]
        )
