"""Semantic retrieval (issue 16, item 2): chunks embedded through the real openai and
google-genai SDKs against the deterministic fake embedding servers, stored with the chunk on
SQLite and PostgreSQL, ranked by cosine and fused with the lexical ranking; an unchanged file is
not embedded again; an embeddings outage never fails retrieval and never half-stores a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.providers.embeddings_fake import (
    embedded_texts,
    fake_embedding,
    gemini_embeddings_routes,
    openai_embeddings_routes,
)
from tests.providers.gemini_fake import FakeGemini
from tests.providers.openai_fake import FakeOpenAI
from twin.brain.embeddings import GeminiEmbedder, OpenAIEmbedder, unpack
from twin.brain.errors import LLMError
from twin.brain.factory import build_embedder
from twin.config import load_settings
from twin.config_knowledge import EmbeddingSettings
from twin.errors import ConfigError
from twin.knowledge.analyze import query_terms
from twin.retry import RetryPolicy
from twin.services.knowledge import KnowledgeBase

DATA = Path(__file__).parent / "data" / "ru"


@pytest.fixture
async def embeddings() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.add_routes(lambda: openai_embeddings_routes(fake))
    await fake.start()
    yield fake
    await fake.stop()


def close(a: list[float], b: list[float]) -> bool:
    return all(abs(x - y) < 1e-5 for x, y in zip(a, b, strict=True))


async def test_embedded_fused_and_not_embedded_twice(store, embeddings: FakeOpenAI) -> None:
    settings, repo = store
    twin = await repo.ensure_twin("default")
    embedder = OpenAIEmbedder(
        model="text-embedding-3-small",
        api_key="k",
        base_url=embeddings.base_url + "/v1",
        policy=RetryPolicy(max_retries=0),
    )
    knowledge = KnowledgeBase(settings=settings.knowledge, repo=repo, embedder=embedder)
    added = await knowledge.add_file(twin, "prices.md", (DATA / "prices.md").read_bytes())
    assert added.outcome == "added" and added.document.embedding_model == "text-embedding-3-small"
    vectors = await repo.knowledge_vectors(twin.id, "text-embedding-3-small")
    assert len(vectors) == added.document.chunks
    passages = await repo.knowledge_passages([chunk_id for chunk_id, _ in vectors])
    first = next(p for p in passages if p.chunk_id == vectors[0][0])
    stored = list(unpack(vectors[0][1]))
    heading_and_text = f"{first.heading}\n{first.text}" if first.heading else first.text
    assert close(stored, fake_embedding(heading_and_text))  # what the provider returned

    requests = len(embeddings.requests)
    again = await knowledge.add_file(twin, "prices.md", (DATA / "prices.md").read_bytes())
    assert again.outcome == "unchanged" and len(embeddings.requests) == requests

    found, has = await knowledge.search(twin.id, "Сколько стоит заменить цепь?", 5)
    assert has and any("Замена цепи" in p.text for p in found)
    assert embedded_texts(embeddings)[-1] == "Сколько стоит заменить цепь?"  # the question
    # "цепочку" shares no term with "Замена цепи": lexical finds nothing, the fused ranking
    # finds it through the embeddings
    assert await repo.search_knowledge(twin.id, query_terms("цепочку поменять"), 5) == []
    fused, _ = await knowledge.search(twin.id, "цепочку поменять", 5)
    assert any("Замена цепи" in p.text for p in fused)

    embeddings.start_outage(status=503)
    found, _ = await knowledge.search(twin.id, "Сколько стоит заменить цепь?", 5)
    assert any("Замена цепи" in p.text for p in found)  # lexical alone
    account = await repo.channel_instance("chat", "http_chat")
    asked = len(embeddings.requests)
    context = await knowledge.context(account.id, 0, [], None, memory=False)
    assert context.passages == [] and context.has_knowledge
    assert len(embeddings.requests) == asked  # nothing asked: nothing embedded
    with pytest.raises(LLMError):
        await knowledge.add_file(twin, "faq.json", (DATA / "faq.json").read_bytes())
    assert [d.name for d in await knowledge.documents(twin.id)] == ["prices.md"]  # not half
    embeddings.end_outage()
    await knowledge.aclose()


async def test_a_model_change_embeds_again(store, embeddings: FakeOpenAI) -> None:
    settings, repo = store
    twin = await repo.ensure_twin("default")
    lexical = KnowledgeBase(settings=settings.knowledge, repo=repo)
    await lexical.add_file(twin, "prices.md", (DATA / "prices.md").read_bytes())
    assert await repo.knowledge_vectors(twin.id, "m2") == []
    embedder = OpenAIEmbedder(model="m2", api_key="k", base_url=embeddings.base_url + "/v1")
    semantic = KnowledgeBase(settings=settings.knowledge, repo=repo, embedder=embedder)
    again = await semantic.add_file(twin, "prices.md", (DATA / "prices.md").read_bytes())
    assert again.outcome == "replaced" and again.document.embedding_model == "m2"
    assert len(await repo.knowledge_vectors(twin.id, "m2")) == again.document.chunks
    await semantic.aclose()


async def test_gemini_embeddings() -> None:
    fake = FakeGemini()
    fake.add_routes(lambda: gemini_embeddings_routes(fake))
    await fake.start()
    try:
        embedder = GeminiEmbedder(
            model="gemini-embedding-001", api_key="g", base_url=fake.base_url, batch=2
        )
        texts = ["замена цепи", "аренда велосипеда", "hours in winter"]
        vectors = await embedder.embed(texts)
        assert len(vectors) == 3
        for text, vector in zip(texts, vectors, strict=True):
            assert close(vector, fake_embedding(text))
        await embedder.aclose()
    finally:
        await fake.stop()


def test_the_factory() -> None:
    llm = load_settings(None, llm={"provider": "openai", "api_key": "sk-llm"}).llm
    assert build_embedder(EmbeddingSettings(), llm) is None
    openai = build_embedder(EmbeddingSettings(provider="openai"), llm)  # [llm]'s key
    assert isinstance(openai, OpenAIEmbedder)
    local = build_embedder(
        EmbeddingSettings(provider="openai", base_url="http://127.0.0.1:1/v1"),
        load_settings(None, llm={"provider": "gemini", "api_key": "g"}).llm,
    )
    assert isinstance(local, OpenAIEmbedder)  # a keyless OpenAI-compatible server
    with pytest.raises(ConfigError) as refused:
        build_embedder(
            EmbeddingSettings(provider="gemini"),
            load_settings(None, llm={"provider": "openai", "api_key": "sk"}).llm,
        )
    assert "TWIN_KNOWLEDGE__EMBEDDINGS__API_KEY" in str(refused.value.problems)
