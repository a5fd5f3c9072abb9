"""A twin's knowledge base as a resource: `/twins/{name}/knowledge` (upload, list, search,
remove). The logic is twin.services.knowledge; these views read the upload, call, render."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import Field

from twin import keys
from twin.api.errors import ApiError
from twin.api.validation import ApiModel, RouteTable, parse_body
from twin.api.views.twins import TwinName, _twins, _visible
from twin.db.records import TwinRecord
from twin.db.records_knowledge import KnowledgeDocRecord
from twin.errors import NotFound, TooLarge
from twin.services.knowledge import Added, KnowledgeBase

routes = RouteTable(tags=("knowledge",))

DocumentName = Field(min_length=1, max_length=255, examples=["prices.md"])
MULTIPART = "multipart/form-data"


class KnowledgePath(ApiModel):
    name: str = TwinName


class DocumentPath(ApiModel):
    name: str = TwinName
    doc: str = DocumentName


class TextDocumentIn(ApiModel):
    name: str = DocumentName
    text: str = Field(min_length=1, description="the document's text")
    kind: Literal["text", "markdown", "html", "qa"] = Field(
        "markdown", description="how the text is read (qa: a JSON list of question/answer)"
    )


class DocumentOut(ApiModel):
    name: str
    kind: str
    sha256: str
    size: int = Field(description="bytes")
    chunks: int
    tokens: int = Field(description="estimated tokens of all its chunks")
    embedding_model: str | None
    created_at: datetime
    updated_at: datetime


class AddedOut(DocumentOut):
    outcome: Literal["added", "replaced", "unchanged"]


class DocumentsOut(ApiModel):
    documents: list[DocumentOut]
    chunks: int = Field(description="of every document together")


class SearchQuery(ApiModel):
    q: str = Field(min_length=1, max_length=2000, description="what a contact would ask")
    limit: int = Field(5, ge=1, le=50)


class PassageOut(ApiModel):
    chunk_id: int
    document: str
    heading: str
    text: str


class SearchOut(ApiModel):
    passages: list[PassageOut]


UPLOAD_BODY = {
    MULTIPART: {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "format": "binary"}},
            "required": ["file"],
        }
    },
    "application/json": {"schema": TextDocumentIn.model_json_schema()},
}


def _knowledge(request: web.Request) -> KnowledgeBase:
    knowledge = request.app.get(keys.KNOWLEDGE)
    if knowledge is None:
        raise ApiError(503, "The knowledge base needs the database.")
    return knowledge


async def _twin(request: web.Request, name: str) -> TwinRecord:
    view = await _twins(request).get(name)
    if not _visible(view, request):
        raise NotFound(f"no twin named '{name}'")
    return view.record


def _document(record: KnowledgeDocRecord) -> DocumentOut:
    return DocumentOut.model_validate(record, from_attributes=True)


@routes.post(
    "/twins/{name}/knowledge",
    name="knowledge_add",
    summary="Add a document to a twin's knowledge base",
    status=201,
    bound_keys=False,
    raw_body=UPLOAD_BODY,
)
async def add_document(request: web.Request, path: KnowledgePath) -> AddedOut:
    """A file (multipart field `file`: .txt, .md, .html, .pdf, or Q&A as .json / .csv) or a
    text (`{name, text, kind}`). Adding a file of the same name replaces its chunks; the same
    content again changes nothing (`outcome: unchanged`). 413: over
    `knowledge.max_document_bytes`; 422: the file cannot be read (named in the error), or the
    twin's knowledge base would pass `max_documents` / `max_chunks`."""
    knowledge = _knowledge(request)
    twin = await _twin(request, path.name)
    if request.content_type == MULTIPART:
        name, data, content_type = await _read_upload(
            request, knowledge.settings.max_document_bytes
        )
        added = await knowledge.add_file(twin, name, data, content_type)
    elif request.content_type == "application/json":
        raw = await _read_limited(request, knowledge.settings.max_document_bytes)
        body = parse_body(TextDocumentIn, raw)
        assert isinstance(body, TextDocumentIn)
        added = await knowledge.add_text(twin, body.name, body.text, body.kind)
    else:
        raise ApiError(415, f"Send {MULTIPART} (a `file` field) or application/json.")
    return _added(added)


def _added(added: Added) -> AddedOut:
    return AddedOut(
        **_document(added.document).model_dump(),
        outcome=added.outcome,  # type: ignore[arg-type]
    )


async def _read_limited(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge("file", f"the body is over the limit of {limit} bytes")
    data = bytearray()
    async for piece in request.content.iter_chunked(64 * 1024):
        data += piece
        if len(data) > limit:
            raise TooLarge("file", f"the body is over the limit of {limit} bytes")
    return bytes(data)


async def _read_upload(request: web.Request, limit: int) -> tuple[str, bytes, str | None]:
    """The `file` part of a multipart body: its file name, bytes (at most `limit`: 413 past
    it, without reading the rest) and declared content type."""
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name != "file":
                continue
            name = part.filename or ""
            data = bytearray()
            while piece := await part.read_chunk(64 * 1024):
                data += piece
                if len(data) > limit:
                    raise TooLarge("file", f"{name or 'file'}: over the limit of {limit} bytes")
            return name, bytes(data), part.headers.get("Content-Type")
    except (HttpProcessingError, ValueError, AssertionError, RuntimeError) as exc:
        # aiohttp's refusals of a malformed multipart body or part headers
        raise ApiError(
            422,
            "The request is not valid.",
            details=[("file", "the multipart body cannot be read")],
        ) from exc
    raise ApiError(
        422, "The request is not valid.", details=[("file", "a `file` part is required")]
    )


@routes.get("/twins/{name}/knowledge", name="knowledge", summary="A twin's knowledge base")
async def list_documents(request: web.Request, path: KnowledgePath) -> DocumentsOut:
    """Its documents by name, with their size, chunks and content hash."""
    documents = await _knowledge(request).documents((await _twin(request, path.name)).id)
    return DocumentsOut(
        documents=[_document(d) for d in documents], chunks=sum(d.chunks for d in documents)
    )


@routes.get(
    "/twins/{name}/knowledge/search",
    name="knowledge_search",
    summary="What the twin would be given for a question",
)
async def search_documents(
    request: web.Request, path: KnowledgePath, query: SearchQuery
) -> SearchOut:
    """The passages retrieval finds for `q` (lexical, fused with semantic when embeddings are
    configured), best first: how an owner checks what the twin knows."""
    knowledge = _knowledge(request)
    twin = await _twin(request, path.name)
    passages, _ = await knowledge.search(twin.id, query.q, query.limit)
    return SearchOut(
        passages=[
            PassageOut(chunk_id=p.chunk_id, document=p.document, heading=p.heading, text=p.text)
            for p in passages
        ]
    )


@routes.delete(
    "/twins/{name}/knowledge/{doc}",
    name="knowledge_remove",
    summary="Remove a document",
    status=204,
    bound_keys=False,
)
async def remove_document(request: web.Request, path: DocumentPath) -> None:
    """The document and its chunks. 404: no such twin or document."""
    await _knowledge(request).remove(await _twin(request, path.name), path.doc)
