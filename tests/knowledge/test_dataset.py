"""The labelled retrieval set in tests/knowledge/data is well formed.

A made-up bicycle workshop with a rental (“Спица” / Spitsa Bike Workshop, Saint Petersburg) is
documented in Russian (`ru/`) and English (`en/`): a Markdown price list, a Markdown contacts
page, a plain-text policies page, an HTML about page and a JSON FAQ. `questions.json` (and
`heldout.json` and `heldout2.json`, 60 more each written later by someone who saw only the
documents) labels each
customer question with the one passage that answers it, by a substring (`answer_contains`) that
must occur exactly once in its document and in no other document of that language, so the label
names one chunk whatever the chunker does (it never spans a line break).
"""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
LANGS = ("ru", "en")
DOCS = ("prices.md", "contacts.md", "policies.txt", "about.html", "faq.json")


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.pieces: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_data(self, data: str) -> None:
        self.pieces.append(data)


def html_text(source: str) -> tuple[str, set[str]]:
    """The text of an HTML page (tags stripped, entities decoded, spaces collapsed per line)
    and the tags it uses."""
    parser = _TextOf()
    parser.feed(source)
    parser.close()
    lines = (re.sub(r"\s+", " ", html.unescape(piece)).strip() for piece in parser.pieces)
    return "\n".join(line for line in lines if line), parser.tags


def faq_pairs(source: str) -> list[dict[str, str]]:
    pairs = json.loads(source)
    assert isinstance(pairs, list)
    for pair in pairs:
        assert set(pair) == {"question", "answer"}, pair
        assert all(isinstance(v, str) and v.strip() for v in pair.values()), pair
    return pairs


def doc_text(lang: str, name: str) -> str:
    """What a reader (and so the chunker) sees of one document."""
    source = (DATA / lang / name).read_text(encoding="utf-8")  # strict UTF-8
    if name.endswith(".html"):
        return html_text(source)[0]
    if name.endswith(".json"):
        return "\n".join(f"{p['question']}\n{p['answer']}" for p in faq_pairs(source))
    return source


# heldout: written blind, after the synonym list; heldout2: blind, once the retrieval was final
SETS = ("questions.json", "heldout.json", "heldout2.json")


def questions(name: str = "questions.json") -> list[dict[str, str]]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("lang", LANGS)
def test_documents_parse(lang: str) -> None:
    assert sorted(p.name for p in (DATA / lang).iterdir()) == sorted(DOCS)
    for name in DOCS:
        raw = (DATA / lang / name).read_bytes()
        raw.decode("utf-8")
        assert not raw.startswith(b"\xef\xbb\xbf"), f"{lang}/{name} has a BOM"
    prices = doc_text(lang, "prices.md")
    assert re.search(r"^# ", prices, re.M) and len(re.findall(r"^## ", prices, re.M)) >= 4
    contacts = doc_text(lang, "contacts.md")
    assert re.search(r"^## ", contacts, re.M)
    policies = doc_text(lang, "policies.txt")
    assert len([p for p in policies.split("\n\n") if p.strip()]) >= 10
    text, tags = html_text((DATA / lang / "about.html").read_text(encoding="utf-8"))
    assert {"h1", "h2", "p", "li"} <= tags
    assert "<" not in text and "&mdash;" not in text
    pairs = faq_pairs((DATA / lang / "faq.json").read_text(encoding="utf-8"))
    assert 8 <= len(pairs) <= 12


@pytest.mark.parametrize("name", SETS)
def test_questions_well_formed(name: str) -> None:
    items = questions(name)
    assert isinstance(items, list)
    for item in items:
        assert set(item) == {"lang", "question", "doc", "answer_contains"}, item
        assert item["lang"] in LANGS and item["doc"] in DOCS, item
        assert item["question"].strip() and item["answer_contains"].strip(), item
        assert "\n" not in item["answer_contains"], item
    for lang in LANGS:
        mine = [item for item in items if item["lang"] == lang]
        assert len(mine) >= 30, lang
        assert len({item["question"] for item in mine}) == len(mine), f"{lang}: repeated question"
        assert {item["doc"] for item in mine} == set(DOCS), f"{lang}: a document without questions"
    russian = [item["question"] for item in items if item["lang"] == "ru"]
    assert all(re.search(r"[а-яё]", q, re.I) for q in russian)


@pytest.mark.parametrize("name", SETS)
@pytest.mark.parametrize("lang", LANGS)
def test_each_label_names_one_passage(lang: str, name: str) -> None:
    texts = {name: doc_text(lang, name) for name in DOCS}
    answers = {
        "faq.json": "\n".join(
            p["answer"] for p in faq_pairs((DATA / lang / "faq.json").read_text(encoding="utf-8"))
        )
    }
    problems = []
    for item in (item for item in questions(name) if item["lang"] == lang):
        label, doc = item["answer_contains"], item["doc"]
        count = texts[doc].count(label)
        if count != 1 or texts[doc].lower().count(label.lower()) != 1:
            problems.append(f"{doc}: {label!r} occurs {count} times")
        if doc in answers and label not in answers[doc]:
            problems.append(f"{doc}: {label!r} is not inside an answer")
        for other, text in texts.items():
            if other != doc and label.lower() in text.lower():
                problems.append(f"{doc}: {label!r} also occurs in {other}")
    assert not problems, "\n".join(problems)


def test_filler_documents_are_deterministic_and_irrelevant() -> None:
    from tests.knowledge.filler import PARAGRAPHS_PER_DOCUMENT, filler_documents

    documents = filler_documents(10_000, seed=7)
    assert documents == filler_documents(10_000, seed=7)
    assert documents != filler_documents(10_000, seed=8)
    assert len({name for name, _ in documents}) == len(documents) == 10_000 // 50
    paragraphs = [
        block
        for _, text in documents
        for block in text.split("\n\n")
        if block.strip() and not block.startswith("#")
    ]
    assert len(paragraphs) == 10_000
    assert all(text.count("\n### ") <= PARAGRAPHS_PER_DOCUMENT for _, text in documents)
    assert {name[-6:] for name, _ in documents} == {"-ru.md", "-en.md"}
    assert all(25 <= len(p.split()) <= 80 for p in paragraphs)
    assert sum(len(text) for _, text in filler_documents(120)) > 0
    assert [len(text.split("\n### ")) - 1 for _, text in filler_documents(120)] == [50, 50, 20]
    labels = [item["answer_contains"].lower() for item in questions()]
    sample = "\n".join(text for _, text in documents[:20]).lower()
    assert not any(label in sample for label in labels)
