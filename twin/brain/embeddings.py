"""Embeddings for the knowledge base's semantic retrieval, through the providers' official SDKs:
OpenAI (and any OpenAI-compatible embeddings endpoint) and Gemini.

Vectors come back unit length (so a dot product is the cosine) and are stored as float32
little-endian bytes (`pack` / `unpack`). Calls go through the one retry policy of twin/retry.py
with the SDKs' own retries off; failures are the brain's LLMErrors."""

from __future__ import annotations

import array
import logging
import sys
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
import openai
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from openai import AsyncOpenAI, DefaultAioHttpClient

from twin.brain.errors import LLMError
from twin.brain.gemini_llm import translate_error as gemini_error
from twin.brain.openai_llm import translate_error as openai_error
from twin.retry import RetryPolicy, Verdict, retrying

__all__ = ["Embedder", "GeminiEmbedder", "OpenAIEmbedder", "pack", "unit", "unpack"]

log = logging.getLogger("twin.brain.embeddings")


class Embedder(Protocol):
    """Texts → unit vectors, one per text, in order."""

    @property
    def model(self) -> str: ...

    async def embed(self, texts: Sequence[str], *, retry: bool = True) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


def unit(vector: Sequence[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else [float(x) for x in vector]


def pack(vector: Sequence[float]) -> bytes:
    data = array.array("f", vector)
    if sys.byteorder != "little":  # pragma: no cover - every supported machine is little-endian
        data.byteswap()
    return data.tobytes()


def unpack(data: bytes) -> array.array[float]:
    vector = array.array("f")
    vector.frombytes(data)
    if sys.byteorder != "little":  # pragma: no cover
        vector.byteswap()
    return vector


def _verdict(exc: BaseException) -> Verdict | None:
    if isinstance(exc, LLMError):
        return Verdict(exc.retryable, exc.retry_after)
    return None


class _Batched:
    """What both providers share: the model, the output size, batching and the retry policy;
    a subclass makes its SDK client and implements `_call` (one request)."""

    def __init__(
        self,
        *,
        model: str,
        dimensions: int | None = None,
        timeout: float = 30.0,
        batch: int = 64,
        policy: RetryPolicy | None = None,
    ) -> None:
        self._model = model
        self._dimensions = dimensions
        self._timeout = timeout
        self._batch = batch
        self._policy = policy or RetryPolicy()

    @property
    def model(self) -> str:
        return self._model

    async def embed(self, texts: Sequence[str], *, retry: bool = True) -> list[list[float]]:
        """Unit vectors of `texts`; `retry=False`: one attempt (a question asked while a reply
        waits: lexical retrieval answers instead of a retry)."""
        policy = self._policy if retry else RetryPolicy(max_retries=0)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            part = list(texts[start : start + self._batch])
            got = await retrying(
                lambda part=part: self._call(part),  # type: ignore[misc]
                verdict=_verdict,
                policy=policy,
                what="embeddings",
                log=log,
            )
            if len(got) != len(part):
                raise LLMError(f"embeddings: {len(got)} vectors for {len(part)} texts")
            vectors += [unit(vector) for vector in got]
        return vectors

    async def _call(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError


class OpenAIEmbedder(_Batched):
    """`POST {base_url}/embeddings` through the openai SDK."""

    def __init__(self, *, api_key: str | None, base_url: str | None = None, **common: Any) -> None:
        super().__init__(**common)
        self._client = AsyncOpenAI(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=self._timeout,
            max_retries=0,
            http_client=DefaultAioHttpClient(timeout=self._timeout),
        )

    async def _call(self, texts: list[str]) -> list[list[float]]:
        extra = {"dimensions": self._dimensions} if self._dimensions else {}
        try:
            response = await self._client.embeddings.create(
                model=self._model, input=texts, encoding_format="float", **extra
            )
        except openai.OpenAIError as exc:
            raise openai_error(exc, "embeddings") from exc
        ordered = sorted(response.data, key=lambda item: item.index)
        return [list(item.embedding) for item in ordered]

    async def aclose(self) -> None:
        await self._client.close()


class GeminiEmbedder(_Batched):
    """`batchEmbedContents` through the google-genai SDK."""

    def __init__(self, *, api_key: str | None, base_url: str | None = None, **common: Any) -> None:
        super().__init__(**common)
        self._http = httpx.AsyncClient(timeout=self._timeout)
        options = types.HttpOptions(
            base_url=base_url,
            timeout=max(1, int(self._timeout * 1000)),
            httpx_async_client=self._http,
        )
        self._client = genai.Client(api_key=api_key or "not-needed", http_options=options)

    async def _call(self, texts: list[str]) -> list[list[float]]:
        config = types.EmbedContentConfig(output_dimensionality=self._dimensions)
        try:
            response = await self._client.aio.models.embed_content(
                model=self._model, contents=texts, config=config
            )
        except (genai_errors.APIError, httpx.HTTPError) as exc:
            raise gemini_error(exc, "embeddings") from exc
        return [list(item.values or []) for item in response.embeddings or []]

    async def aclose(self) -> None:
        await self._http.aclose()
