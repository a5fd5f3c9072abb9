"""`twin style build | show | eval`: learn the owner's writing style from their own messages, and
measure how much the twin's answers sound like them.

Like `twin login`, these run outside the daemon on the same database (twin.cli.runtime).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twin.config import Settings


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_common: Callable[[argparse.ArgumentParser], None],
) -> None:
    style = commands.add_parser(
        "style",
        help="learn the owner's writing style from their own messages",
        description="`twin style build` reads your own messages through Telegram and stores a "
        "style profile the replies imitate; `twin style show` prints it; `twin style eval` "
        "measures how much the twin sounds like you.",
    )
    style_commands = style.add_subparsers(dest="style_command", metavar="ACTION", required=True)
    build = style_commands.add_parser(
        "build",
        help="read your messages and (re)build the profile (resumable)",
        description="Resumes an interrupted build unless --restart is given.",
    )
    add_common(build)
    build.add_argument("--account", default="default", help="account name (default: default)")
    build.add_argument("--limit", type=int, default=2000, help="messages to read (default 2000)")
    build.add_argument("--restart", action="store_true", help="start over instead of resuming")
    build.set_defaults(handler=cmd_style_build)
    show = style_commands.add_parser("show", help="print the stored profile")
    add_common(show)
    show.add_argument("--account", default="default", help="account name (default: default)")
    show.set_defaults(handler=cmd_style_show)
    evaluate = style_commands.add_parser(
        "eval",
        help="score how much the twin sounds like you (0-100), with an HTML report",
        description="Holds out some of your real answers, has the twin answer the same "
        "conversations with the configured model, and compares: distributions (length, "
        "messages, emoji, case, punctuation, smileys, language, formality), AI tells and a "
        "character n-gram authorship model. The model calls are estimated and confirmed first "
        "unless --yes. The result is stored (GET /style/evals).",
    )
    add_common(evaluate)
    evaluate.add_argument("--account", default="default", help="account name (default: default)")
    evaluate.add_argument(
        "--sample", type=int, default=50, help="held-out answers to test on (default 50)"
    )
    evaluate.add_argument("--seed", type=int, default=0, help="which answers are held out")
    evaluate.add_argument(
        "--report", type=Path, default=None,
        help="the HTML report's path (default: DATA_DIR/reports/style-eval-…html)",
    )
    evaluate.add_argument(
        "--yes", action="store_true", help="call a paid model without asking first"
    )
    evaluate.set_defaults(handler=cmd_style_eval)


def cmd_style_build(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_style_build(settings, args.account, args.limit, args.restart))


async def _style_build(settings: Settings, name: str, limit: int, restart: bool) -> int:
    from twin.domain.style import render_style
    from twin.errors import Unauthorized
    from twin.services.policy import behaviour_of
    from twin.services.style import ScanProgress, build_style, stored_style

    last: list[ScanProgress] = []

    def progress(state: ScanProgress) -> None:
        last[:] = [state]
        width = 30
        filled = int(width * min(state.scanned, state.total) / max(state.total, 1))
        bar = "#" * filled + "-" * (width - filled)
        print(
            f"\r[{bar}] scanned {state.scanned:,} of {state.total:,} messages, "
            f"{state.own:,} of yours (limit {state.limit:,}), "
            f"chat {state.chats_done}/{state.chats}",
            end="",
            file=sys.stderr,
        )

    from twin import cli

    async with cli.runtime(settings) as (db, accounts, directory):
        account = await accounts.get(name)
        if not account.authorized:
            raise Unauthorized(f"account '{name}' is not logged in: run `twin login` first")
        account_id = await directory.id_of(name)
        overrides = await db.repo.behaviour_overrides(account_id)
        timezone = behaviour_of(settings, overrides).schedule.timezone  # the owner's hours
        profile = await build_style(
            account,
            db.repo,
            account_id,
            limit=limit,
            restart=restart,
            progress=progress,
            timezone=timezone,
        )
        print(file=sys.stderr)
        state = last[0] if last else None
        why = (
            "the --limit was reached"
            if state is not None and state.own >= state.limit
            else "every private chat was read"
        )
        print(
            f"Style profile complete ({why}): {profile.message_count:,} of your messages.",
            file=sys.stderr,
        )
        print(render_style(profile))
        stored = await stored_style(db.repo, account_id)
        if stored is not None:
            print(stored[1].describe())
    return 0


def cmd_style_show(args: argparse.Namespace) -> int:
    from twin import cli

    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(_style_show(settings, args.account))


async def _style_show(settings: Settings, name: str) -> int:
    from twin.db.engine import database
    from twin.domain.style import render_style
    from twin.services.style import stored_style

    async with database(settings) as db:
        account = await db.repo.get_account(name)
        stored = await stored_style(db.repo, account.id)
    if stored is None:
        print("No style profile yet: run `twin style build`.")
        return 1
    print(render_style(stored[0]))
    print(stored[1].describe())
    return 0


def cmd_style_eval(args: argparse.Namespace) -> int:
    from twin import cli

    if not 1 <= args.sample <= 1000:
        print("--sample must be between 1 and 1000", file=sys.stderr)
        return 2
    settings = cli.load(args)
    cli.prepare_storage(settings)
    return asyncio.run(
        _style_eval(settings, args.account, args.sample, args.seed, args.report, args.yes)
    )


async def _style_eval(
    settings: Settings, name: str, sample: int, seed: int, report: Path | None, yes: bool
) -> int:
    from datetime import UTC, datetime

    from twin import cli
    from twin.brain.factory import build_brain
    from twin.domain.style_eval import MIN_ANSWERS
    from twin.errors import Unauthorized
    from twin.services.policy import behaviour_of
    from twin.services.style import stored_profile
    from twin.services.style_eval import (
        Answering,
        NothingToScore,
        answer,
        estimate,
        measure,
        prepare,
        read_corpus,
    )
    from twin.services.style_report import render_report

    async with cli.runtime(settings) as (db, accounts, directory):
        account = await accounts.get(name)
        if not account.authorized:
            raise Unauthorized(f"account '{name}' is not logged in: run `twin login` first")
        account_id = await directory.id_of(name)
        repo = db.repo
        behaviour = behaviour_of(settings, await repo.behaviour_overrides(account_id))
        print("Reading your private chats…", file=sys.stderr)
        corpus = await read_corpus(account, repo, account_id)
        prepared = prepare(corpus, sample, seed, await stored_profile(repo, account_id))
        if prepared.answers_found < MIN_ANSWERS:
            print(f"Too few of your answers to test on: {prepared.answers_found} found in your "
                  f"private chats (messages of yours right after a contact's), at least "
                  f"{MIN_ANSWERS} needed.", file=sys.stderr)
            return 1
        brain = build_brain(settings.llm)
        try:
            answering = Answering(brain, repo, account_id, behaviour, prepared)
            planned = await estimate(answering)
            cost = f"${planned.cost.usd:.4f}" if planned.cost.priced else "unknown (no price)"
            print(
                f"{len(prepared.held)} of your {prepared.answers_found} answers held out "
                f"({len(prepared.reference)} other messages of yours as the reference). "
                f"{len(prepared.held)} calls to {brain.llm.provider} {brain.llm.model}: "
                f"~{planned.prompt_tokens:,} prompt tokens, at most "
                f"{planned.completion_tokens:,} back; cost at most {cost}.",
                file=sys.stderr,
            )
            if not planned.free and not yes and not _confirmed():
                print("Cancelled: no model was called.", file=sys.stderr)
                return 1
            answered = await answer(answering, behaviour.humanize.bubble_max_chars)
        finally:
            await brain.llm.aclose()
        try:
            result = measure(prepared, answered, seed=seed)
        except NothingToScore as exc:
            print(f"No score: {exc}.", file=sys.stderr)
            return 1
        at = datetime.now(UTC)
        if report is None:
            stamp = at.strftime("%Y%m%d-%H%M%S")
            report = settings.storage.data_dir / "reports" / f"style-eval-{name}-{stamp}.html"
        html = render_report(
            result, account=name, model=brain.llm.model, at=at, held=prepared.held,
            answers=answered.answers,
        )
        _write_private(report, html)
        await repo.add_style_eval(
            account_id,
            model=brain.llm.model,
            samples=len(prepared.held),
            score=result["score"],
            result=result,
            report_path=str(report.resolve()),
        )
    print(_table(result))
    print(f"Report: {report}", file=sys.stderr)
    return 0


def _write_private(path: Path, text: str) -> None:
    """The report holds your and your contacts' messages: only your user may read it (0600,
    its folder 0700 when made here), whatever the umask."""
    import os

    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode otherwise
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def _confirmed() -> bool:
    print("Go on? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        return input().strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _table(result: dict) -> str:
    """The result as the terminal shows it."""
    parts = result["components"]
    author = "not measured" if parts["authorship"] is None else f"{parts['authorship']:.2f}"
    lines = [
        f"Style score: {result['score']}/100  "
        f"(style {parts['style']:.2f}, authorship {author}, tells {parts['tells']:.2f})",
        f"{result['answered']} of {result['samples']} answered, {result['escalated']} handed "
        f"to the owner, {result['failed']} failed",
        "",
        f"{'feature':<12}{'twin':>8}{'ceiling':>9}   (Jensen–Shannon distance to your messages)",
    ]
    for feature, figures in result["features"].items():
        lines.append(f"{feature:<12}{figures['twin']:>8.2f}{figures['ceiling']:>9.2f}")
    lines += ["", f"{'tell':<14}{'twin':>7}{'you':>7}{'held out':>10}   (share of messages)"]
    for tell, rates in result["tells"].items():
        lines.append(
            f"{tell:<14}{rates['twin']:>7.2f}{rates['owner']:>7.2f}{rates['held_out']:>10.2f}"
        )
    author_figures = result["authorship"]
    if author_figures:
        lines += [
            "",
            f"authorship: {author_figures['twin_share']:.0%} of the twin's answers taken for "
            f"yours, {author_figures['owner_share']:.0%} of your own "
            f"(model accuracy {author_figures['accuracy']:.0%})",
        ]
    return "\n".join(lines)
