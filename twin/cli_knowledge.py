"""`twin knowledge add | list | remove | search`: a twin's knowledge base from the command line
(on the database, whether `twin run` is up or not; the daemon sees a change at its next reply).

`add` takes files and folders (searched for .txt, .md, .html, .pdf, .json and .csv files), each
stored whole or not at all: a file that cannot be read is reported by name and the others are
still added (exit status 1 then)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.config import Settings
    from twin.db.records import TwinRecord
    from twin.services.knowledge import KnowledgeBase

SUFFIXES = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".pdf", ".json", ".csv"}


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    knowledge = commands.add_parser(
        "knowledge",
        help="a twin's knowledge base: add, list, remove, search documents",
        description="Documents a twin answers from: text, Markdown, HTML, PDF, Q&A (.json/.csv).",
    )
    actions = knowledge.add_subparsers(dest="knowledge_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add (or replace) documents: files or folders")
    add_common(add)
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--twin", default="default", help="the twin (default: default)")
    add.add_argument("--quiet", action="store_true", help="no progress bar")
    add.set_defaults(handler=cmd_knowledge)
    listing = actions.add_parser("list", help="the twin's documents")
    add_common(listing)
    listing.add_argument("--twin", default="default", help="the twin (default: default)")
    listing.add_argument("--json", action="store_true", help="one JSON object per document")
    listing.set_defaults(handler=cmd_knowledge)
    remove = actions.add_parser("remove", help="remove documents by name")
    add_common(remove)
    remove.add_argument("names", nargs="+", metavar="NAME")
    remove.add_argument("--twin", default="default", help="the twin (default: default)")
    remove.set_defaults(handler=cmd_knowledge)
    search = actions.add_parser("search", help="what the twin would be given for a question")
    add_common(search)
    search.add_argument("question")
    search.add_argument("--twin", default="default", help="the twin (default: default)")
    search.add_argument("--limit", type=_positive, default=5, help="passages (default 5)")
    search.set_defaults(handler=cmd_knowledge)


def _positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 50:
        raise argparse.ArgumentTypeError("a number from 1 to 50")
    return value


def cmd_knowledge(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_knowledge(settings, args))


def files_of(paths: list[Path]) -> Iterator[Path]:
    """The files named, and the readable documents under the folders named (sorted)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
            )
        else:
            yield path


async def _knowledge(settings: Settings, args: argparse.Namespace) -> int:
    from twin.db import migrate
    from twin.db.engine import database
    from twin.services.events import EventLog
    from twin.services.knowledge import KnowledgeBase

    # the database alone (no Telegram: nothing here talks to it)
    if not await migrate.is_up_to_date(settings.storage.url):
        await migrate.upgrade(settings.storage.url)
    async with database(settings) as db:
        # `default` exists once the daemon has started; a fresh database gets it here
        repo = db.repo
        twin = await (repo.ensure_twin if args.twin == "default" else repo.get_twin)(args.twin)
        embedder = None
        if settings.knowledge.embeddings.provider:  # the provider SDKs only when needed
            from twin.brain.factory import build_embedder

            embedder = build_embedder(settings.knowledge.embeddings, settings.llm)
        knowledge = KnowledgeBase(
            settings=settings.knowledge, repo=db.repo, embedder=embedder, events=EventLog(db.repo)
        )
        try:
            if args.knowledge_command == "add":
                return await _add(knowledge, twin, list(files_of(args.paths)), args.quiet)
            if args.knowledge_command == "list":
                for doc in await knowledge.documents(twin.id):
                    row = {
                        "name": doc.name,
                        "kind": doc.kind,
                        "size": doc.size,
                        "chunks": doc.chunks,
                        "tokens": doc.tokens,
                        "sha256": doc.sha256,
                        "updated_at": doc.updated_at.isoformat(),
                    }
                    if args.json:
                        print(json.dumps(row, ensure_ascii=False))
                    else:
                        print(
                            f"{doc.name:<32} {doc.kind:<9} {doc.size:>9,} bytes "
                            f"{doc.chunks:>5} chunks  {doc.sha256[:12]}"
                        )
                return 0
            if args.knowledge_command == "remove":
                for name in args.names:
                    await knowledge.remove(twin, name)
                    print(f"removed {name}")
                return 0
            passages, _ = await knowledge.search(twin.id, args.question, args.limit)
            for passage in passages:
                title = " › ".join(p for p in (passage.document, passage.heading) if p)
                print(f"[{passage.chunk_id}] {title}\n{passage.text}\n")
            return 0
        finally:
            await knowledge.aclose()


async def _add(knowledge: KnowledgeBase, twin: TwinRecord, files: list[Path], quiet: bool) -> int:
    from tqdm import tqdm

    from twin.errors import TwinError
    from twin.services.knowledge import document_name

    failed = 0
    seen: dict[str, Path] = {}
    bar = tqdm(total=len(files), unit="file", disable=quiet or len(files) < 2, file=sys.stderr)
    try:
        for path in files:
            bar.set_description(path.name[:30])
            try:
                name = document_name(path.name)
                if name in seen:  # documents are named by their base name: one would replace
                    failed += 1
                    bar.write(f"{path}: not added, {seen[name]} has the same name", sys.stderr)
                    bar.update(1)
                    continue
                seen[name] = path
                data = await asyncio.to_thread(path.read_bytes)
                added = await knowledge.add_file(twin, path.name, data)
            except OSError as exc:
                failed += 1
                bar.write(f"{path}: cannot be read: {exc.strerror or exc}", file=sys.stderr)
            except TwinError as exc:
                failed += 1
                bar.write(f"{path}: {exc}" if path.name not in str(exc) else str(exc), sys.stderr)
            else:
                document = added.document
                bar.write(f"{added.outcome} {document.name} ({document.chunks} chunks)")
            bar.update(1)
    finally:
        bar.close()
    await knowledge.refresh_statistics()
    if failed:
        print(f"{failed} of {len(files)} files were not added", file=sys.stderr)
    return 1 if failed else 0
