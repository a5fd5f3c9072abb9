"""Deterministic fake embeddings for the OpenAI and Gemini fakes, for the unmodified SDKs.

`fake_embedding(text, dim)` is a hashed bag of features, stable across processes and machines
(blake2b, not the salted `hash()`): the text is lowercased, `ё` folded into `е` and cut into
words (`\\w+`); each word gives its crude stem (the first 5 characters of a longer word, else
the word) and its character trigrams with boundary markers (``<цепь>`` → ``<це``, ``цеп``, …).
Each feature is hashed into one of `dim` buckets with a ±1 sign; the sum is L2-normalised (the
empty text gives the zero vector). So word forms that share a stem or most of their letters
("замена цепи" / "заменить цепь") land close, unrelated texts near orthogonal — enough
semantics for retrieval tests, none of a real model's.

Mounting (before `start()`)::

    fake = FakeOpenAI()
    fake.add_routes(lambda: openai_embeddings_routes(fake))  # POST /v1/embeddings
    gemini = FakeGemini()
    gemini.add_routes(lambda: gemini_embeddings_routes(gemini))  # …:(batch)EmbedContent(s)

OpenAI — ``POST /v1/embeddings`` {"model", "input": str | [str] | [int] | [[int]],
"encoding_format"?: "float" | "base64", "dimensions"?: int} → {"object": "list", "data":
[{"object": "embedding", "index": i, "embedding": [floats] | base64 of little-endian float32}],
"model", "usage": {"prompt_tokens", "total_tokens"}}. The openai SDK asks for "base64" whenever
its caller gives no `encoding_format` (and decodes it itself), so both are served. Token arrays
are embedded as their numbers' text. Errors as the API words them: 400 for an empty input or
string, more than 2048 inputs, a bad `dimensions` or `encoding_format`; 401 when the fake has an
`api_key` and the Bearer token differs.

Gemini — google-genai's `client.aio.models.embed_content(model=..., contents=[...])` (Gemini API,
not Vertex) sends ``POST /v1beta/models/{model}:batchEmbedContents`` {"requests": [{"model":
"models/{model}", "content": {"parts": [{"text"}]}, "outputDimensionality"?, "taskType"?,
"title"?}]} → {"embeddings": [{"values": [floats]}]}; one request embeds the text of all its
parts joined with spaces. The REST API's single ``…:embedContent`` {"content", …} →
{"embedding": {"values"}} is served too. 400 for more than 100 requests, a request whose model
differs from the URL's or has no text; 401 when the fake has an `api_key` and `x-goog-api-key`
differs.

Default dimension: `dim` given to the routes factory (256); `dimensions` /
`outputDimensionality` in a request override it. Faults, latency and recording come from the
server (FakeProviderServer): each call is in `server.requests`; `embedded_texts(server)` lists
every text embedded so far, in order.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
import struct
from typing import Any

from aiohttp import web

from tests.providers.base import FakeProviderServer
from tests.providers.gemini_fake import google_error
from tests.providers.openai_fake import rough_tokens

__all__ = [
    "DEFAULT_DIM",
    "decode_base64_embedding",
    "embedded_texts",
    "fake_embedding",
    "gemini_embeddings_routes",
    "openai_embeddings_routes",
]

DEFAULT_DIM = 256
STEM = 5
OPENAI_MAX_INPUTS = 2048
GEMINI_MAX_REQUESTS = 100
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=131072)
def _features(word: str, dim: int) -> tuple[tuple[int, int], ...]:
    """(bucket, sign) of one lowercased word's features: its stem and its trigrams."""
    features = ["s:" + (word[:STEM] if len(word) > STEM else word)]
    marked = f"<{word}>"
    features += ["t:" + marked[i : i + 3] for i in range(len(marked) - 2)]
    hashed = []
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "little")
        hashed.append((number % dim, 1 if (number >> 63) & 1 else -1))
    return tuple(hashed)


def fake_embedding(text: str, dim: int = DEFAULT_DIM) -> list[float]:
    """A deterministic unit vector of `dim` floats for `text` (zeros for a text without words)."""
    if dim < 1:
        raise ValueError("dim must be positive")
    vector = [0.0] * dim
    for word in _WORD.findall(text.lower().replace("ё", "е")):
        for bucket, sign in _features(word, dim):
            vector[bucket] += sign
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector


def encode_base64_embedding(vector: list[float]) -> str:
    """As the OpenAI API sends `encoding_format="base64"`: little-endian float32, base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def decode_base64_embedding(data: str) -> list[float]:
    raw = base64.b64decode(data)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def embedded_texts(server: FakeProviderServer) -> list[str]:
    """Every text the fake embedded (or was asked to, before a fault), in arrival order."""
    texts: list[str] = []
    for rec in server.requests:
        body = rec.json if isinstance(rec.json, dict) else {}
        if rec.path.endswith("/embeddings"):
            texts += _openai_inputs(body.get("input")) or []
        elif rec.path.endswith(":batchEmbedContents"):
            texts += [_gemini_text(r) or "" for r in body.get("requests") or []]
        elif rec.path.endswith(":embedContent"):
            texts.append(_gemini_text(body) or "")
    return texts


# --- OpenAI ------------------------------------------------------------------------------------


def _openai_error(status: int, message: str, param: str | None = None) -> web.Response:
    kind = "invalid_request_error" if status != 401 else "invalid_api_key"
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": param, "code": None}}, status=status
    )


def _openai_inputs(value: Any) -> list[str] | None:
    """The texts of an `input`; None when it is not one of the API's shapes."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return list(value)
        if all(isinstance(item, int) for item in value):  # one token array
            return [" ".join(map(str, value))]
        if all(isinstance(item, list) and all(isinstance(t, int) for t in item) for item in value):
            return [" ".join(map(str, item)) for item in value]
    return None


def openai_embeddings_routes(
    server: FakeProviderServer, dim: int = DEFAULT_DIM
) -> list[web.RouteDef]:
    """``POST /v1/embeddings`` on `server` (a FakeOpenAI: mount with its `add_routes`)."""

    async def embeddings(request: web.Request) -> web.Response:
        rec = await server.record(request)
        api_key = getattr(server, "api_key", None)
        if api_key is not None and request.headers.get("Authorization") != f"Bearer {api_key}":
            return _openai_error(401, "Incorrect API key provided")
        body = rec.json if isinstance(rec.json, dict) else None
        if body is None:
            return _openai_error(400, "We could not parse the JSON body of your request.")
        if not body.get("model"):
            return _openai_error(400, "you must provide a model parameter", "model")
        texts = _openai_inputs(body.get("input"))
        if texts is None:
            return _openai_error(400, "'$.input' is invalid.", "input")
        if len(texts) > OPENAI_MAX_INPUTS:
            return _openai_error(
                400, f"'$.input' is too long: at most {OPENAI_MAX_INPUTS} inputs", "input"
            )
        if any(not text for text in texts):
            return _openai_error(400, "'$.input' is invalid: empty string.", "input")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return _openai_error(
                400, f"'{encoding}' is not one of ['float', 'base64']", "encoding_format"
            )
        size = body.get("dimensions", dim)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            return _openai_error(400, "'dimensions' must be a positive integer", "dimensions")
        data = []
        for index, text in enumerate(texts):
            vector = fake_embedding(text, size)
            value: Any = encode_base64_embedding(vector) if encoding == "base64" else vector
            data.append({"object": "embedding", "index": index, "embedding": value})
        tokens = sum(rough_tokens(text) for text in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    return [web.post("/v1/embeddings", embeddings)]


# --- Gemini ------------------------------------------------------------------------------------


def _gemini_text(request: dict[str, Any]) -> str | None:
    content = request.get("content") if isinstance(request, dict) else None
    if not isinstance(content, dict):
        return None
    texts = [
        p["text"]
        for p in content.get("parts") or []
        if isinstance(p, dict) and isinstance(p.get("text"), str)
    ]
    return " ".join(texts) if texts and any(texts) else None


def gemini_embeddings_routes(
    server: FakeProviderServer, dim: int = DEFAULT_DIM
) -> list[web.RouteDef]:
    """``…:batchEmbedContents`` and ``…:embedContent`` on `server` (a FakeGemini: mount with its
    `add_routes`)."""

    def bad(message: str, status: int = 400) -> web.Response:
        return web.json_response(google_error(status, message), status=status)

    def authorised(request: web.Request) -> bool:
        api_key = getattr(server, "api_key", None)
        return api_key is None or request.headers.get("x-goog-api-key") == api_key

    def embedding(model: str, item: Any, where: str) -> dict[str, Any] | str:
        """One request's {"values"}, or the error message."""
        if not isinstance(item, dict):
            return f"{where}: not an object"
        named = item.get("model")
        if named is not None and named != f"models/{model}":
            return (
                f"{where}.model: model names in requests must match the URL's model "
                f"(models/{model}), got {named}"
            )
        text = _gemini_text(item)
        if text is None:
            return f"{where}.content: the content has no text"
        size = item.get("outputDimensionality", dim)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            return f"{where}.outputDimensionality: must be a positive integer"
        return {"values": fake_embedding(text, size)}

    async def batch(request: web.Request) -> web.Response:
        rec = await server.record(request)
        if not authorised(request):
            return bad("API key not valid. Please pass a valid API key.", 401)
        model = request.match_info["model"]
        body = rec.json if isinstance(rec.json, dict) else {}
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return bad("* BatchEmbedContentsRequest.requests: requests is not specified")
        if len(requests) > GEMINI_MAX_REQUESTS:
            return bad(
                "* BatchEmbedContentsRequest.requests: at most "
                f"{GEMINI_MAX_REQUESTS} requests can be in one batch"
            )
        embeddings = []
        for index, item in enumerate(requests):
            got = embedding(model, item, f"* BatchEmbedContentsRequest.requests[{index}]")
            if isinstance(got, str):
                return bad(got)
            embeddings.append(got)
        return web.json_response({"embeddings": embeddings})

    async def single(request: web.Request) -> web.Response:
        rec = await server.record(request)
        if not authorised(request):
            return bad("API key not valid. Please pass a valid API key.", 401)
        body = rec.json if isinstance(rec.json, dict) else {}
        got = embedding(request.match_info["model"], body, "* EmbedContentRequest")
        if isinstance(got, str):
            return bad(got)
        return web.json_response({"embedding": got})

    model = r"{model:[^/:]+}"
    return [
        web.post(f"/{{version}}/models/{model}:batchEmbedContents", batch),
        web.post(f"/{{version}}/models/{model}:embedContent", single),
    ]
