"""/twins/{name}/knowledge over real HTTP on SQLite and PostgreSQL (issue 16, items 1 and 2):
uploads of each kind, replacement by content hash, search with Russian morphology, limits and
unreadable files refused by name with nothing half-stored."""

from __future__ import annotations

import aiohttp
import pytest

from tests.api.conftest import AUTH, make_client  # noqa: F401  (fixture)
from tests.api.test_control import control_settings
from tests.db.conftest import backend_url, engine_url, postgres_url  # noqa: F401  (fixtures)
from twin import keys

PRICES = """# Прайс-лист

## Ремонт

Замена цепи — 900 рублей, работа занимает 20 минут.

Настройка переключателей — 700 рублей.

## Аренда

Аренда городского велосипеда — 300 рублей в час, залог 5000 рублей.
"""

POLICIES_EN = """Refunds

We refund a rental within 14 days if the bike was not used.

Warranty

Every repair has a 30-day warranty on parts and labour.
"""


@pytest.fixture
async def client(make_client, engine_url, tmp_path):  # noqa: F811
    settings = control_settings(
        engine_url,
        tmp_path,
        knowledge={"max_document_bytes": 4000, "max_documents": 3, "chunk_tokens": 64},
    )
    return await make_client(settings=settings, real_database=True)


def _form(name: str, data: bytes, content_type: str = "application/octet-stream"):
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=content_type)
    return form


async def _documents(client) -> dict[str, dict]:
    response = await client.get("/twins/default/knowledge", headers=AUTH)
    assert response.status == 200
    return {d["name"]: d for d in (await response.json())["documents"]}


async def _search(client, q: str) -> list[dict]:
    response = await client.get("/twins/default/knowledge/search", params={"q": q}, headers=AUTH)
    assert response.status == 200, await response.text()
    return (await response.json())["passages"]


async def test_upload_replace_search_and_remove(client) -> None:
    added = await client.post(
        "/twins/default/knowledge", data=_form("prices.md", PRICES.encode()), headers=AUTH
    )
    assert added.status == 201, await added.text()
    document = await added.json()
    assert document["outcome"] == "added"
    assert document["kind"] == "markdown" and document["chunks"] >= 2

    # a different word form finds the chunk: "заменить цепь" / "Замена цепи"
    passages = await _search(client, "Сколько стоит заменить цепь?")
    assert passages and "Замена цепи" in passages[0]["text"]
    assert passages[0]["document"] == "prices.md"
    assert passages[0]["heading"].endswith("Ремонт")

    again = await client.post(
        "/twins/default/knowledge", data=_form("prices.md", PRICES.encode()), headers=AUTH
    )
    assert (await again.json())["outcome"] == "unchanged"
    changed = PRICES.replace("900 рублей", "950 рублей")
    replaced = await client.post(
        "/twins/default/knowledge", data=_form("prices.md", changed.encode()), headers=AUTH
    )
    assert replaced.status == 201
    body = await replaced.json()
    assert body["outcome"] == "replaced" and body["sha256"] != document["sha256"]
    texts = " ".join(p["text"] for p in await _search(client, "замена цепи"))
    assert "950 рублей" in texts and "900 рублей" not in texts  # the old chunks are gone

    as_text = await client.post(
        "/twins/default/knowledge",
        json={"name": "policies.txt", "text": POLICIES_EN, "kind": "text"},
        headers=AUTH,
    )
    assert as_text.status == 201, await as_text.text()
    passages = await _search(client, "do you give refunds?")
    assert passages[0]["document"] == "policies.txt" and "14 days" in passages[0]["text"]

    assert set(await _documents(client)) == {"prices.md", "policies.txt"}
    removed = await client.delete("/twins/default/knowledge/prices.md", headers=AUTH)
    assert removed.status == 204
    assert set(await _documents(client)) == {"policies.txt"}
    assert not any(p["document"] == "prices.md" for p in await _search(client, "замена цепи"))
    gone = await client.delete("/twins/default/knowledge/prices.md", headers=AUTH)
    assert gone.status == 404

    # every change is an event (an unchanged upload is none)
    events = await client.app[keys.DATABASE].repo.events_since(0, limit=100)
    knowledge = [(e.type, e.data) for e in events if e.type.startswith("knowledge.")]
    assert [(t, d["document"], d.get("outcome")) for t, d in knowledge] == [
        ("knowledge.added", "prices.md", "added"),
        ("knowledge.added", "prices.md", "replaced"),
        ("knowledge.added", "policies.txt", "added"),
        ("knowledge.removed", "prices.md", None),
    ]
    assert all(d["twin"] == "default" for _, d in knowledge)


async def test_limits_and_unreadable_files(client) -> None:
    too_big = await client.post(
        "/twins/default/knowledge", data=_form("big.txt", b"word " * 1000), headers=AUTH
    )
    assert too_big.status == 413
    error = (await too_big.json())["error"]
    assert error["type"] == "payload_too_large" and "big.txt" in error["message"]

    broken = await client.post(
        "/twins/default/knowledge",
        data=_form("menu.pdf", b"%PDF-1.7\n1 0 obj <<", "application/pdf"),
        headers=AUTH,
    )
    assert broken.status == 422
    details = (await broken.json())["error"]["details"]
    assert details[0]["field"] == "file" and "menu.pdf" in details[0]["error"]
    assert await _documents(client) == {}  # nothing half-stored

    for index in range(3):
        ok = await client.post(
            "/twins/default/knowledge",
            json={"name": f"doc{index}.md", "text": f"Document number {index}."},
            headers=AUTH,
        )
        assert ok.status == 201
    fourth = await client.post(
        "/twins/default/knowledge", json={"name": "doc3.md", "text": "One more."}, headers=AUTH
    )
    assert fourth.status == 422
    assert "at most 3 documents" in (await fourth.json())["error"]["details"][0]["error"]
    # replacing one of the three is not a fourth
    again = await client.post(
        "/twins/default/knowledge", json={"name": "doc0.md", "text": "Changed."}, headers=AUTH
    )
    assert (await again.json())["outcome"] == "replaced"

    plain = await client.post(
        "/twins/default/knowledge", data=b"hello", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert plain.status == 415
    no_file = aiohttp.FormData()
    no_file.add_field("other", b"x", filename="x.txt")
    missing = await client.post("/twins/default/knowledge", data=no_file, headers=AUTH)
    assert missing.status == 422
    garbled = await client.post(
        "/twins/default/knowledge",
        data=b"--b\r\nContent-Disposition: form-data; name=file\r\nBad\x01Header\r\n\r\nx\r\n--b--",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert garbled.status == 422, await garbled.text()
    assert "Traceback" not in await garbled.text()
    unknown = await client.get("/twins/nobody/knowledge", headers=AUTH)
    assert unknown.status == 404


async def test_uploads_at_once_keep_the_limits_and_one_name(client) -> None:
    """Concurrent uploads take turns per twin: never past max_documents (3 here), and one
    name uploaded by many at once is one document, never a 500."""
    import asyncio

    async def upload(name: str, text: str):
        response = await client.post(
            "/twins/default/knowledge", json={"name": name, "text": text}, headers=AUTH
        )
        return response.status, await response.json()

    many = await asyncio.gather(*(upload(f"doc{i}.md", f"Text {i}.") for i in range(8)))
    assert sorted(status for status, _ in many) == [201] * 3 + [422] * 5
    assert len(await _documents(client)) == 3

    kept = next(iter(await _documents(client)))  # whichever three won
    same = await asyncio.gather(*(upload(kept, f"Version {i}.") for i in range(6)))
    assert {status for status, _ in same} == {201}
    assert {body["outcome"] for _, body in same} <= {"replaced", "unchanged"}
    assert len(await _documents(client)) == 3


async def test_document_names_and_text_that_no_database_stores(client) -> None:
    import unicodedata
    from urllib.parse import quote

    # aiohttp (like other clients) percent-encodes a file name in the part's header; any
    # spelling of a name (NFC/NFD) is one name
    encoded = await client.post(
        "/twins/default/knowledge", data=_form("прайс.md", "Цена: 100".encode()), headers=AUTH
    )
    assert (await encoded.json())["name"] == "прайс.md"
    decomposed = quote(unicodedata.normalize("NFD", "прайс.md"))
    removed = await client.delete(f"/twins/default/knowledge/{decomposed}", headers=AUTH)
    assert removed.status == 204
    # a lone surrogate (valid JSON escape, invalid Unicode) is refused by name, not a 500
    broken = await client.post(
        "/twins/default/knowledge",
        data=_form("faq.json", b'[{"question": "q\\ud800", "answer": "a"}]'),
        headers=AUTH,
    )
    assert broken.status == 422, await broken.text()
    assert "faq.json" in (await broken.json())["error"]["details"][0]["error"]
    assert await _documents(client) == {}
