"""The fake embeddings endpoints, through the real `openai` and `google-genai` SDKs."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.providers.embeddings_fake import (
    DEFAULT_DIM,
    decode_base64_embedding,
    embedded_texts,
    fake_embedding,
    gemini_embeddings_routes,
    openai_embeddings_routes,
)
from tests.providers.gemini_fake import FakeGemini
from tests.providers.openai_fake import FakeOpenAI

TEXTS = ["замена цепи", "заменить цепь", "Wheel truing from 500 RUB", "аренда электровелосипеда"]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def close(a: list[float], b: list[float], tolerance: float = 1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI(api_key="k")
    server.add_routes(lambda: openai_embeddings_routes(server))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=fake.base_url + "/v1", api_key="k", max_retries=0)
    yield sdk
    await sdk.close()


@pytest.fixture
async def gemini() -> AsyncIterator[FakeGemini]:
    server = FakeGemini(api_key="g-key")
    server.add_routes(lambda: gemini_embeddings_routes(server))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def genai_client(gemini: FakeGemini) -> AsyncIterator[genai.Client]:
    http = httpx.AsyncClient(timeout=5)
    options = types.HttpOptions(base_url=gemini.base_url, httpx_async_client=http)
    sdk = genai.Client(api_key="g-key", http_options=options)
    yield sdk
    await sdk.aio.aclose()
    await http.aclose()


# --- the vector itself ---------------------------------------------------------------------------


def test_fake_embedding_is_a_deterministic_unit_vector() -> None:
    vector = fake_embedding("Замена цепи — 450 ₽")
    assert len(vector) == DEFAULT_DIM
    assert math.isclose(sum(x * x for x in vector), 1.0)
    assert vector == fake_embedding("Замена цепи — 450 ₽")
    assert len(fake_embedding("замена цепи", 64)) == 64
    assert fake_embedding("ёлка") == fake_embedding("ЕЛКА")
    assert fake_embedding("") == [0.0] * DEFAULT_DIM
    assert fake_embedding("?! —") == [0.0] * DEFAULT_DIM
    with pytest.raises(ValueError):
        fake_embedding("x", 0)


def test_fake_embedding_does_not_depend_on_hash_seed() -> None:
    code = (
        "import json; from tests.providers.embeddings_fake import fake_embedding; "
        "print(json.dumps(fake_embedding('заменить цепь, please', 32)))"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, check=True
        )
        outputs.append(json.loads(run.stdout))
    assert outputs[0] == outputs[1] == fake_embedding("заменить цепь, please", 32)


def test_similar_texts_are_closer_than_unrelated_ones() -> None:
    chain, change_chain = fake_embedding("замена цепи"), fake_embedding("заменить цепь")
    unrelated = fake_embedding("аренда электровелосипеда")
    assert cosine(chain, change_chain) > 0.4
    assert cosine(chain, change_chain) > cosine(chain, unrelated) + 0.3
    refund, refunds = fake_embedding("refund policy"), fake_embedding("refunds and policies")
    assert cosine(refund, refunds) > cosine(refund, fake_embedding("wheel truing")) + 0.3
    question = fake_embedding("сколько стоит заменить цепь?")
    passages = ["Замена цепи — 450 ₽.", "Замена тормозных колодок — 400 ₽ за колесо."]
    scores = [cosine(question, fake_embedding(p)) for p in passages]
    assert scores[0] > scores[1]


# --- OpenAI --------------------------------------------------------------------------------------


async def test_openai_sdk_gets_float_vectors(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    response = await client.embeddings.create(
        model="text-embedding-3-small", input=TEXTS, encoding_format="float"
    )
    assert response.model == "text-embedding-3-small"
    assert [item.index for item in response.data] == [0, 1, 2, 3]
    for item, text in zip(response.data, TEXTS, strict=True):
        assert item.object == "embedding"
        assert item.embedding == fake_embedding(text)
    assert response.usage.prompt_tokens == response.usage.total_tokens > 0
    request = fake.requests[-1]
    assert request.path == "/v1/embeddings"
    assert request.headers["Authorization"] == "Bearer k"
    assert request.json == {
        "model": "text-embedding-3-small",
        "input": TEXTS,
        "encoding_format": "float",
    }
    assert embedded_texts(fake) == TEXTS


async def test_openai_sdk_default_is_base64_and_decodes_the_same(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    default = await client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    # The SDK asks for base64 when its caller names no encoding, then decodes it itself.
    assert fake.requests[-1].json["encoding_format"] == "base64"
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input=TEXTS, encoding_format="float"
    )
    for a, b in zip(default.data, floats.data, strict=True):
        assert close([float(x) for x in a.embedding], b.embedding)
    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input="замена цепи", encoding_format="base64"
    )
    wire = json.loads(raw.http_response.text)["data"][0]["embedding"]
    assert isinstance(wire, str)
    assert close(decode_base64_embedding(wire), fake_embedding("замена цепи"))


async def test_openai_dimensions_and_single_input(client: openai.AsyncOpenAI) -> None:
    response = await client.embeddings.create(
        model="text-embedding-3-large", input="одна строка", dimensions=64, encoding_format="float"
    )
    assert len(response.data) == 1
    assert response.data[0].embedding == fake_embedding("одна строка", 64)


async def test_openai_similarity_through_the_sdk(client: openai.AsyncOpenAI) -> None:
    response = await client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    vectors = [[float(x) for x in item.embedding] for item in response.data]
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[3])
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])


async def test_openai_errors(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="text-embedding-3-small", input=["ok", ""])
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="text-embedding-3-small", input=[])
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="m", input="x", dimensions=0)
    stranger = openai.AsyncOpenAI(base_url=fake.base_url + "/v1", api_key="wrong", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError):
            await stranger.embeddings.create(model="m", input="x")
    finally:
        await stranger.close()


async def test_openai_faults_and_recording(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.fail_next(status=500, path_contains="/embeddings")
    with pytest.raises(openai.InternalServerError):
        await client.embeddings.create(model="m", input="x")
    fake.fail_next(status=429, retry_after=0.01, path_contains="/embeddings")
    retrying = openai.AsyncOpenAI(base_url=fake.base_url + "/v1", api_key="k", max_retries=1)
    try:
        response = await retrying.embeddings.create(model="m", input="x", encoding_format="float")
    finally:
        await retrying.close()
    assert response.data[0].embedding == fake_embedding("x")
    assert [r.path for r in fake.requests] == ["/v1/embeddings"] * 3
    assert embedded_texts(fake) == ["x", "x", "x"]


# --- Gemini --------------------------------------------------------------------------------------


async def test_gemini_sdk_batch_embeds(gemini: FakeGemini, genai_client: genai.Client) -> None:
    response = await genai_client.aio.models.embed_content(
        model="text-embedding-004", contents=TEXTS
    )
    values = [item.values for item in response.embeddings or []]
    assert values == [fake_embedding(text) for text in TEXTS]
    request = gemini.requests[-1]
    assert request.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert request.headers["x-goog-api-key"] == "g-key"
    first = request.json["requests"][0]
    assert first["model"] == "models/text-embedding-004"
    assert first["content"]["parts"] == [{"text": TEXTS[0]}]
    assert embedded_texts(gemini) == TEXTS
    v = [list(v or []) for v in values]
    assert cosine(v[0], v[1]) > cosine(v[0], v[3])


async def test_gemini_sdk_dimensions_and_task_type(
    gemini: FakeGemini, genai_client: genai.Client
) -> None:
    config = types.EmbedContentConfig(output_dimensionality=48, task_type="RETRIEVAL_DOCUMENT")
    response = await genai_client.aio.models.embed_content(
        model="models/gemini-embedding-001", contents=["одна строка"], config=config
    )
    assert [item.values for item in response.embeddings or []] == [
        fake_embedding("одна строка", 48)
    ]
    sent = gemini.requests[-1]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.json["requests"][0]["outputDimensionality"] == 48
    assert sent.json["requests"][0]["taskType"] == "RETRIEVAL_DOCUMENT"


async def test_gemini_single_embed_content(gemini: FakeGemini) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{gemini.base_url}/v1beta/models/text-embedding-004:embedContent",
            headers={"x-goog-api-key": "g-key"},
            json={"content": {"parts": [{"text": "замена"}, {"text": "цепи"}]}},
        )
    assert response.status_code == 200
    assert response.json() == {"embedding": {"values": fake_embedding("замена цепи")}}


async def test_gemini_errors_and_faults(gemini: FakeGemini, genai_client: genai.Client) -> None:
    with pytest.raises(genai_errors.ClientError) as bad:
        await genai_client.aio.models.embed_content(
            model="text-embedding-004", contents=[str(i) for i in range(101)]
        )
    assert bad.value.code == 400
    gemini.fail_next(status=503, path_contains=":batchEmbedContents")
    with pytest.raises(genai_errors.ServerError) as down:
        await genai_client.aio.models.embed_content(model="text-embedding-004", contents=["x"])
    assert down.value.code == 503
    response = await genai_client.aio.models.embed_content(
        model="text-embedding-004", contents=["x"]
    )
    assert [item.values for item in response.embeddings or []] == [fake_embedding("x")]
    http = httpx.AsyncClient()
    try:
        wrong = await http.post(
            f"{gemini.base_url}/v1beta/models/text-embedding-004:batchEmbedContents",
            headers={"x-goog-api-key": "nope"},
            json={"requests": [{"content": {"parts": [{"text": "x"}]}}]},
        )
        other_model = await http.post(
            f"{gemini.base_url}/v1beta/models/text-embedding-004:batchEmbedContents",
            headers={"x-goog-api-key": "g-key"},
            json={"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]},
        )
    finally:
        await http.aclose()
    assert wrong.status_code == 401
    assert other_model.status_code == 400


async def test_gemini_generate_content_still_served(
    gemini: FakeGemini, genai_client: genai.Client
) -> None:
    response = await genai_client.aio.models.generate_content(
        model="gemini-2.0-flash", contents="hello"
    )
    assert response.text == "echo: hello"
