"""Accounts, encrypted sessions, update state and the entity cache."""

from __future__ import annotations

from datetime import UTC

import pytest
import sqlalchemy as sa

from tests.db.conftest import make_settings
from twin.db.crypto import SessionDecryptError
from twin.db.engine import Database, database
from twin.db.records import AccountStatus
from twin.db.repo import Repository
from twin.errors import NotFound

SESSION = b"\x02" + b"A" * 256 + b"|149.154.167.51:443"


async def test_get_or_create_account_is_idempotent(repo: Repository) -> None:
    first = await repo.get_or_create_account("default")
    second = await repo.get_or_create_account("default")
    assert first == second
    assert first.status is AccountStatus.NEW
    assert first.enabled is True and first.has_session is False
    assert first.created_at.tzinfo is UTC
    assert [a.name for a in await repo.list_accounts()] == ["default"]


async def test_get_missing_account(repo: Repository) -> None:
    with pytest.raises(NotFound):
        await repo.get_account("nobody")
    with pytest.raises(NotFound):
        await repo.update_account("nobody", phone="1")
    with pytest.raises(NotFound):
        await repo.load_session("nobody")


async def test_update_account(repo: Repository, account) -> None:
    updated = await repo.update_account(
        "default", phone="+15550001", tg_user_id=2**40, username="owner", first_name="Ann",
        status="authorized", enabled=False,
    )
    assert updated.tg_user_id == 2**40
    assert updated.status is AccountStatus.AUTHORIZED
    assert updated.enabled is False
    assert updated.updated_at >= account.updated_at
    assert await repo.get_account("default") == updated
    with pytest.raises(TypeError, match="session_data"):
        await repo.update_account("default", session_data=b"x")
    with pytest.raises(ValueError, match="bogus"):
        await repo.update_account("default", status="bogus")


async def test_session_round_trip(repo: Repository, account) -> None:
    assert await repo.load_session("default") is None
    await repo.save_session("default", SESSION)
    assert await repo.load_session("default") == SESSION
    assert (await repo.get_account("default")).has_session is True

    await repo.save_update_state("default", {"pts": 10, "qts": 0, "date": 1700000000, "seq": 3})
    assert await repo.load_update_state("default") == {
        "pts": 10, "qts": 0, "date": 1700000000, "seq": 3
    }

    logged_out = await repo.delete_session("default")
    assert logged_out.status is AccountStatus.LOGGED_OUT
    assert logged_out.has_session is False
    assert await repo.load_session("default") is None
    assert await repo.load_update_state("default") is None


async def _raw_session(db: Database, name: str) -> bytes:
    async with db.engine.connect() as connection:
        result = await connection.execute(
            sa.text("SELECT session_data FROM accounts WHERE name = :name"), {"name": name}
        )
        return bytes(result.scalar_one())


async def test_session_is_encrypted_at_rest(db: Database, account) -> None:
    await db.repo.save_session("default", SESSION)
    stored = await _raw_session(db, "default")
    assert SESSION not in stored
    assert b"A" * 16 not in stored
    assert b"149.154.167.51" not in stored


async def test_wrong_key_cannot_load(db: Database, migrated_url: str, tmp_path, account) -> None:
    await db.repo.save_session("default", SESSION)
    other = make_settings(migrated_url, tmp_path, secret="another key")
    async with database(other) as second:
        with pytest.raises(SessionDecryptError):
            await second.repo.load_session("default")


async def test_tampered_ciphertext_is_rejected(db: Database, account) -> None:
    await db.repo.save_session("default", SESSION)
    blob = bytearray(await _raw_session(db, "default"))
    blob[-5] ^= 0xFF
    async with db.engine.begin() as connection:
        await connection.execute(
            sa.text("UPDATE accounts SET session_data = :blob WHERE name = 'default'"),
            {"blob": bytes(blob)},
        )
    with pytest.raises(SessionDecryptError):
        await db.repo.load_session("default")


async def test_rows_cannot_be_swapped_between_accounts(db: Database) -> None:
    await db.repo.get_or_create_account("alice")
    await db.repo.get_or_create_account("bob")
    await db.repo.save_session("alice", b"alice-key")
    await db.repo.save_session("bob", b"bob-key")
    alice, bob = await _raw_session(db, "alice"), await _raw_session(db, "bob")
    async with db.engine.begin() as connection:
        for name, blob in (("alice", bob), ("bob", alice)):
            await connection.execute(
                sa.text("UPDATE accounts SET session_data = :blob WHERE name = :name"),
                {"blob": blob, "name": name},
            )
    for name in ("alice", "bob"):
        with pytest.raises(SessionDecryptError):
            await db.repo.load_session(name)


async def test_database_creates_key_file_once(migrated_url: str, tmp_path, caplog) -> None:
    settings = make_settings(migrated_url, tmp_path, secret=None)
    caplog.set_level("INFO", logger="twin.db")
    async with database(settings) as first:
        await first.repo.get_or_create_account("default")
        await first.repo.save_session("default", SESSION)
    async with database(settings) as second:
        assert await second.repo.load_session("default") == SESSION
    created = [r for r in caplog.records if "created a new secret key" in r.getMessage()]
    assert len(created) == 1
    assert str(settings.security.key_file) in created[0].getMessage()


async def test_entity_cache(repo: Repository, account) -> None:
    written = await repo.upsert_entities(
        account.id,
        [
            {"entity_id": 42, "access_hash": -(2**62), "username": "Alice", "phone": "+1555",
             "name": "Alice A"},
            {"entity_id": -1001234567890, "access_hash": 7, "name": "Channel"},
            {"entity_id": 42, "access_hash": 2**62, "username": "Alice", "phone": "+1555",
             "name": "Alice B"},  # the later row for the same id wins
        ],
    )
    assert written == 2
    alice = await repo.get_entity(account.id, entity_id=42)
    assert alice is not None
    assert (alice.access_hash, alice.name, alice.username, alice.phone) == (
        2**62, "Alice B", "alice", "1555"
    )
    assert await repo.get_entity(account.id, username="@ALICE") == alice
    assert await repo.get_entity(account.id, phone="+1555") == alice
    channel = await repo.get_entity(account.id, entity_id=-1001234567890)
    assert channel is not None and channel.access_hash == 7
    assert await repo.get_entity(account.id, username="nobody") is None

    await repo.upsert_entities(account.id, [{"entity_id": 42, "access_hash": 1, "name": "A"}])
    refreshed = await repo.get_entity(account.id, entity_id=42)
    assert refreshed is not None and refreshed.access_hash == 1 and refreshed.username is None
    assert await repo.upsert_entities(account.id, []) == 0
    with pytest.raises(TypeError):
        await repo.get_entity(account.id)
