"""`[knowledge]`: each twin's knowledge base (limits, chunking, retrieval, its share of the
prompt, optional embeddings) and the memory of each contact."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from twin.config_behaviour import Section


class EmbeddingSettings(Section):
    """`[knowledge.embeddings]`: semantic retrieval through the provider's embeddings
    endpoint; no provider: lexical retrieval alone."""

    provider: Literal["", "openai", "gemini"] = ""
    model: str = "text-embedding-3-small"
    base_url: str | None = None  # an OpenAI-compatible embeddings server, a proxy, a fake
    api_key: SecretStr | None = None  # else [llm]'s key when the provider is the same
    dimensions: int | None = Field(None, ge=1, le=8192)
    timeout: float = Field(30.0, gt=0)
    query_timeout: float = Field(
        3.0, gt=0, description="seconds a reply waits for its question's embedding"
    )
    batch: int = Field(64, ge=1, le=2048, description="texts per embeddings request")


class KnowledgeSettings(Section):
    max_document_bytes: int = Field(10 * 1024 * 1024, gt=0, description="an upload at most")
    max_documents: int = Field(500, ge=1, description="documents per twin")
    max_chunks: int = Field(20000, ge=1, description="chunks per twin")
    chunk_tokens: int = Field(256, ge=32, le=2048, description="a chunk's token budget")
    top_k: int = Field(5, ge=0, le=50, description="passages given to the model at most")
    candidates: int = Field(20, ge=1, le=500, description="per ranking, before fusion")
    prompt_share: float = Field(
        0.35, gt=0, le=0.8, description="of the prompt budget the passages may take"
    )
    query_turns: int = Field(3, ge=1, le=20, description="the contact's latest turns asked")
    builtin_synonyms: bool = Field(
        True, description="expand questions with twin's list of customers' synonyms"
    )
    synonyms_file: Path | None = Field(
        None, description="the owner's own synonym lines (Solr's `a, b, c` format)"
    )
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    # memory of each contact
    memory: bool = True
    memory_quiet_minutes: float = Field(
        30.0, gt=0, description="a conversation this quiet has its facts extracted"
    )
    memory_max_facts: int = Field(30, ge=1, le=500, description="kept per contact")
    memory_check_seconds: float = Field(
        60.0, gt=0, description="how often quiet chats are looked for"
    )

    @model_validator(mode="after")
    def _valid(self) -> KnowledgeSettings:
        if self.candidates < self.top_k:
            raise ValueError("candidates must be at least top_k")
        if self.synonyms_file is not None and not self.synonyms_file.is_file():
            raise ValueError(f"synonyms_file {self.synonyms_file} is not a readable file")
        return self
