"""Synonyms expanded at query time (twin.knowledge.synonyms): Solr's equivalence lines, matched
on analyzed word forms and whole phrases in order, added after the question's own terms; the
built-in list, the owner's file, and the lexical search on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.config import load_settings
from twin.errors import ConfigError
from twin.knowledge.analyze import MAX_SYNONYM_TERMS, query_terms, terms_of
from twin.knowledge.synonyms import Synonyms, builtin_lines, load_synonyms
from twin.services.knowledge import KnowledgeBase


def terms(*words: str) -> set[str]:
    return {term for word in words for term in terms_of(word)}


def test_lines_comments_and_lone_phrases() -> None:
    synonyms = Synonyms(["# a comment", "", "alone", "price, cost  # prices", " , fee, "])
    assert len(synonyms) == 1  # "alone" has nothing to be equal to; " , fee" neither
    assert synonyms.expand(["what", "does", "it", "cost"]) == ["price"]
    assert synonyms.expand(["cost", "price"]) == []  # both phrases asked: nothing to add


def test_phrases_match_whole_and_in_order() -> None:
    synonyms = Synonyms(["pick up, collect"])
    assert set(synonyms.expand(["can", "you", "pick", "up", "my", "bike"])) == terms("collect")
    assert synonyms.expand(["pick", "the", "bike", "up"]) == []  # not the phrase
    assert synonyms.expand(["up", "pick"]) == []
    assert set(synonyms.expand(["do", "you", "collect"])) == terms("pick", "up")


def test_word_forms_and_function_words() -> None:
    synonyms = Synonyms(["машина, автомобиль", "how much, price"])
    # "машине" and "машина" share their stem: the form the owner wrote need not be the asked one
    assert set(synonyms.expand(["приеду", "на", "машине"])) == terms("автомобиль")
    # a phrase's function words help it match but are never searched for
    assert synonyms.expand(["the", "price"]) == sorted(terms("much"))
    assert "how" not in synonyms.expand(["prices"])


def test_query_terms_keep_the_question_first_and_cap_the_synonyms() -> None:
    synonyms = Synonyms(["hours, schedule, timetable", "refund, money back"])
    plain = query_terms("What are your hours? I want my money back")
    expanded = query_terms("What are your hours? I want my money back", synonyms)
    assert expanded[: len(plain)] == plain
    assert set(expanded[len(plain) :]) == terms("schedule", "timetable", "refund")
    assert len(expanded) == len(set(expanded))
    wide = Synonyms([", ".join(f"w{i}x" for i in range(40)) + ", target"])
    assert len(query_terms("target", wide)) == 1 + MAX_SYNONYM_TERMS


def test_the_builtin_list_and_the_owners_file(tmp_path: Path) -> None:
    lines = [line for line in builtin_lines() if line.strip() and not line.startswith("#")]
    builtin = Synonyms(lines)
    assert len(builtin) == len(lines)  # every line is a group of two or more phrases
    assert terms("collect") <= set(builtin.expand(["can", "you", "pick", "up", "my", "bike"]))
    assert terms("автомобиль") <= set(builtin.expand(["приеду", "на", "машине"]))

    own = tmp_path / "synonyms.txt"
    own.write_text("спица, спицы, spoke\n", encoding="utf-8")
    assert len(load_synonyms(builtin=False, path=own)) == 1
    assert len(load_synonyms(builtin=True, path=own)) == len(builtin) + 1
    assert len(load_synonyms(builtin=False, path=None)) == 0

    with pytest.raises(ConfigError) as refused:
        load_settings(None, knowledge={"synonyms_file": str(tmp_path / "missing.txt")})
    assert "synonyms_file" in str(refused.value.problems)


async def test_search_finds_the_owners_words_for_the_customers(store, tmp_path: Path) -> None:
    settings, repo = store
    twin = await repo.ensure_twin("default")
    text = (
        "# Policies\n\n## Pickup and delivery\n\nWe collect your bike in our van: 700 RUB.\n\n"
        "## Paints\n\nWe paint frames in any colour.\n\n"
        "## Парковка\n\nДва гостевых места для автомобилей во дворе.\n"
    )
    own = tmp_path / "own.txt"
    own.write_text("colour, color, respray\n", encoding="utf-8")
    configured = settings.knowledge.model_copy(update={"synonyms_file": own})
    knowledge = KnowledgeBase(settings=configured, repo=repo)
    await knowledge.add_text(twin, "policies.md", text)

    async def best(question: str, kb: KnowledgeBase = knowledge) -> str:
        found, _ = await kb.search(twin.id, question, 1)
        return found[0].text if found else ""

    assert "collect your bike" in await best("Can you pick up my bicycle?")
    assert "автомобилей" in await best("Приеду на машине, где встать?")
    assert "any colour" in await best("Do you do a respray?")  # the owner's own line

    plain_settings = settings.knowledge.model_copy(update={"builtin_synonyms": False})
    plain = KnowledgeBase(settings=plain_settings, repo=repo)
    assert "collect your bike" not in await best("Can you pick up my bicycle?", plain)
    await knowledge.aclose()
    await plain.aclose()
