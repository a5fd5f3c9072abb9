"""A twin's knowledge base: documents parsed, chunked and indexed for retrieval."""
