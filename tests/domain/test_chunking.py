"""Structure-aware splitting and chunking of knowledge-base documents (pure)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.chunking import (
    MIN_MAX_TOKENS,
    Chunk,
    Section,
    SectionBuilder,
    chunk_sections,
    split_markdown,
    split_plain,
)
from twin.domain.tokens import estimate_tokens

SENTENCE = "The salon is open every day from nine in the morning until nine in the evening."
RUSSIAN = (
    "Салон работает каждый день с девяти утра до девяти вечера. В праздники мы закрываемся "
    "раньше, поэтому лучше записаться заранее. Оплатить можно картой или наличными."
)


def shown(chunk: Chunk) -> str:
    """What a caller shows the model: the heading line, then the text."""
    return f"{chunk.heading}\n{chunk.text}" if chunk.heading else chunk.text


# --- split_markdown -----------------------------------------------------------------------


def test_markdown_headings_nest_into_paths() -> None:
    sections = split_markdown(
        "# Salon\n\nWelcome.\n\n## Prices\n\n### Haircuts\n\nMen 500.\n\n### Colouring\n\n"
        "From 2000.\n\n## Contacts\n\nNevsky 1.\n\n# Other\n\nMore.\n"
    )
    assert [(s.heading, s.text) for s in sections] == [
        ("Salon", "Welcome."),
        ("Salon > Prices > Haircuts", "Men 500."),
        ("Salon > Prices > Colouring", "From 2000."),
        ("Salon > Contacts", "Nevsky 1."),
        ("Other", "More."),
    ]


def test_markdown_text_before_any_heading_has_an_empty_path() -> None:
    sections = split_markdown("Intro line.\n\n## Later\n\nBody.")
    assert [(s.heading, s.text) for s in sections] == [("", "Intro line."), ("Later", "Body.")]


def test_markdown_setext_headings_and_closing_hashes() -> None:
    sections = split_markdown(
        "Guide\n=====\n\nIntro.\n\nSetup\n-----\n\nStep one.\n\n## Prices ##\n\nCheap."
    )
    assert [(s.heading, s.text) for s in sections] == [
        ("Guide", "Intro."),
        ("Guide > Setup", "Step one."),
        ("Guide > Prices", "Cheap."),
    ]


def test_a_hashtag_is_not_a_heading_and_a_rule_is_not_text() -> None:
    sections = split_markdown("#hashtag stays text\n\n---\n\nAfter the rule.")
    assert [(s.heading, s.text) for s in sections] == [
        ("", "#hashtag stays text\n\nAfter the rule.")
    ]


def test_front_matter_and_comments_are_ignored() -> None:
    sections = split_markdown(
        "---\ntitle: Secret\ntags: [a]\n---\n# Title\n\nVisible <!-- owner's note --> text.\n"
        "<!--\nhidden block\n-->\nMore."
    )
    assert len(sections) == 1
    assert sections[0].heading == "Title"
    assert "Secret" not in sections[0].text and "hidden" not in sections[0].text
    assert "owner" not in sections[0].text
    assert sections[0].text == "Visible text.\n\nMore."


def test_fenced_code_is_kept_as_text_never_as_headings_or_questions() -> None:
    sections = split_markdown(
        "## Setup\n\n```bash\n# install it\nQ: not a question\nA: not an answer\n```\n\nDone."
    )
    assert [s.heading for s in sections] == ["Setup"]
    assert sections[0].kind == "text"
    assert "# install it\nQ: not a question\nA: not an answer" in sections[0].text
    assert sections[0].text.endswith("Done.")


def test_wrapped_lines_are_joined_but_list_items_keep_their_lines() -> None:
    (section,) = split_markdown(
        "A wrapped\nparagraph goes on.\n\n- one\n- two\n1. first\n2) second"
    )
    assert section.text == "A wrapped paragraph goes on.\n\n- one\n- two\n1. first\n2) second"


@pytest.mark.parametrize(
    ("question_line", "answer_line"),
    [
        ("Q: How long does it take?", "A: About an hour."),
        ("**Q:** How long does it take?", "**A:** About an hour."),
        ("**Q: How long does it take?**", "**A: About an hour.**"),
        ("Question: How long does it take?", "Answer: About an hour."),
    ],
)
def test_question_and_answer_markers_make_a_pair(question_line: str, answer_line: str) -> None:
    sections = split_markdown(f"## FAQ\n\nIntro.\n\n{question_line}\n{answer_line}\n")
    assert sections == [
        Section("FAQ", "Intro."),
        Section("FAQ", "About an hour.", "qa", "How long does it take?"),
    ]


def test_russian_pairs_and_multi_paragraph_answers() -> None:
    sections = split_markdown(
        "Вопрос: Где вы находитесь?\n\nОтвет: На Невском, 1.\n\nВход со двора.\n\n"
        "Вопрос: Есть парковка?\nОтвет: Да.\n\n# Next\n\nOther text."
    )
    assert sections == [
        Section("", "На Невском, 1.\n\nВход со двора.", "qa", "Где вы находитесь?"),
        Section("", "Да.", "qa", "Есть парковка?"),
        Section("Next", "Other text."),
    ]


def test_a_question_without_an_answer_stays_text() -> None:
    sections = split_markdown("Q: Is anyone reading this?\n\nJust a note.")
    assert sections == [Section("", "Q: Is anyone reading this?\n\nJust a note.")]


# --- split_plain --------------------------------------------------------------------------


def test_plain_paragraphs_and_a_short_title_line_as_heading() -> None:
    sections = split_plain(
        "Opening hours\n\nWe are open every day.\nOn holidays we close early.\n\n"
        "Prices\n\nA haircut costs 500.\n\nColouring costs 2000."
    )
    assert sections == [
        Section("Opening hours", "We are open every day. On holidays we close early."),
        Section("Prices", "A haircut costs 500.\n\nColouring costs 2000."),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "This line ends with a period.\n\nA paragraph follows here.",  # a sentence
        "Is it a question?\n\nA paragraph follows here.",
        "First. Second\n\nA paragraph follows here.",  # sentences inside
        "- a list item\n\nA paragraph follows here.",
        "one two three four five six seven eight nine ten eleven\n\nA paragraph follows.",
        "Best regards\n\nJohn",  # the last paragraph has nothing to head
    ],
)
def test_plain_headings_are_conservative(text: str) -> None:
    assert all(section.heading == "" for section in split_plain(text))


def test_two_short_lines_in_a_row_only_the_second_heads() -> None:
    sections = split_plain("Salon\n\nPrices\n\nA haircut costs 500.")
    assert sections == [Section("", "Salon"), Section("Prices", "A haircut costs 500.")]


def test_plain_qa_pairs_and_hyphenated_line_ends() -> None:
    sections = split_plain("Q: Do you take cards?\nA: Yes, all of them, includ-\ning foreign ones.")
    assert sections == [
        Section("", "Yes, all of them, includ-ing foreign ones.", "qa", "Do you take cards?")
    ]


def test_section_builder_hard_lines_and_pair_endings() -> None:
    builder = SectionBuilder()
    builder.heading(2, "FAQ")
    builder.line("Q: Parking?", "hard")
    builder.line("A: Behind the building.", "hard")
    builder.line("", "end")
    builder.line("first line", "hard")
    builder.line("second line", "hard")
    assert builder.finish() == [
        Section("FAQ", "Behind the building.", "qa", "Parking?"),
        Section("FAQ", "first line\nsecond line"),
    ]


# --- chunk_sections -----------------------------------------------------------------------


def test_paragraphs_of_one_section_are_packed_together() -> None:
    chunks = chunk_sections([Section("Hours", "Open daily.\n\nClosed on holidays.")])
    assert chunks == [
        Chunk(0, "Hours", "Open daily.\n\nClosed on holidays.", chunks[0].tokens),
    ]
    assert chunks[0].tokens == estimate_tokens("Hours\nOpen daily.\n\nClosed on holidays.")


def test_chunks_never_span_two_sections() -> None:
    chunks = chunk_sections(
        [Section("A", "Short."), Section("A", "Also short."), Section("B", "Tiny.")]
    )
    assert [(c.ordinal, c.heading, c.text) for c in chunks] == [
        (0, "A", "Short."),
        (1, "A", "Also short."),
        (2, "B", "Tiny."),
    ]


def test_paragraphs_are_packed_up_to_the_budget_and_never_cut_when_they_fit() -> None:
    paragraphs = [f"Paragraph {n}. " + SENTENCE for n in range(12)]
    chunks = chunk_sections([Section("Hours", "\n\n".join(paragraphs))], max_tokens=96)
    # one paragraph costs about 35 tokens with the heading: two fit in 96, three do not
    assert [chunk.text.count("\n\n") + 1 for chunk in chunks] == [2] * 6
    for chunk in chunks:
        assert chunk.tokens <= 96
        assert all(piece in paragraphs for piece in chunk.text.split("\n\n"))
    assert "\n\n".join(chunk.text for chunk in chunks) == "\n\n".join(paragraphs)


def test_a_long_paragraph_is_split_at_sentence_boundaries() -> None:
    sentences = [f"Sentence number {n} tells something about the salon." for n in range(30)]
    chunks = chunk_sections([Section("", " ".join(sentences))], max_tokens=48)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.tokens <= 48
        assert chunk.text.endswith(".")
        assert re.fullmatch(
            r"(Sentence number \d+ tells something about the salon\. ?)+", chunk.text
        )
    assert " ".join(chunk.text for chunk in chunks) == " ".join(sentences)


def test_a_long_sentence_is_split_at_words_never_inside_one() -> None:
    words = [f"word{n}" for n in range(200)]
    chunks = chunk_sections([Section("", " ".join(words))], max_tokens=40)
    assert len(chunks) > 2
    for chunk in chunks:
        assert chunk.tokens <= 40
        assert all(word in words for word in chunk.text.split())
    assert " ".join(chunk.text for chunk in chunks).split() == words


def test_only_a_single_word_over_budget_is_cut_inside() -> None:
    blob = "x" * 2000
    chunks = chunk_sections([Section("", f"before {blob} after")], max_tokens=40)
    assert all(chunk.tokens <= 40 for chunk in chunks)
    assert "".join(chunk.text.replace(" ", "") for chunk in chunks) == f"before{blob}after"
    assert chunks[0].text.startswith("before")
    assert chunks[-1].text.endswith("after")


def test_a_qa_pair_is_one_chunk() -> None:
    (chunk,) = chunk_sections([Section("FAQ", "Yes, all of them.", "qa", "Do you take cards?")])
    assert chunk.text == "Q: Do you take cards?\nA: Yes, all of them."
    assert chunk.heading == "FAQ"


def test_a_long_answer_is_split_and_every_piece_keeps_the_question() -> None:
    answer = " ".join([SENTENCE] * 20)
    chunks = chunk_sections([Section("FAQ", answer, "qa", "When are you open?")], max_tokens=64)
    assert len(chunks) > 2
    pieces = []
    for chunk in chunks:
        assert chunk.tokens <= 64
        assert chunk.text.startswith("Q: When are you open?\nA: ")
        pieces.append(chunk.text.removeprefix("Q: When are you open?\nA: "))
    assert " ".join(pieces) == answer


def test_a_very_long_question_is_cut_when_the_answer_must_be_split() -> None:
    question = "Could you please tell me " + "really " * 100 + "when you open?"
    chunks = chunk_sections([Section("", " ".join([SENTENCE] * 6), "qa", question)], max_tokens=64)
    assert len(chunks) > 1
    assert all(chunk.tokens <= 64 and chunk.text.startswith("Q: Could you") for chunk in chunks)


def test_empty_sections_and_unanswered_pairs_are_dropped_and_ordinals_stay_consecutive() -> None:
    chunks = chunk_sections(
        [
            Section("A", "  \n\n \t "),
            Section("B", "Kept."),
            Section("C", "", "qa", "Unanswered?"),
            Section("D", "An answer with no question is text.", "qa", ""),
        ]
    )
    assert [(c.ordinal, c.heading, c.text) for c in chunks] == [
        (0, "B", "Kept."),
        (1, "D", "An answer with no question is text."),
    ]


def test_whitespace_is_normalised_but_paragraph_breaks_stay() -> None:
    body = "  Men\t\t500 \u00a0 roubles.  \n\n\n\n  Women   900.  "
    (chunk,) = chunk_sections([Section("  Prices \n >  Haircuts ", body)])
    assert chunk.heading == "Prices > Haircuts"
    assert chunk.text == "Men 500 roubles.\n\nWomen 900."


def test_a_long_heading_is_cut_to_a_quarter_of_the_budget_keeping_its_end() -> None:
    heading = " > ".join(f"Level {n}" for n in range(40)) + " > Haircuts"
    (chunk,) = chunk_sections([Section(heading, "Men 500.")], max_tokens=64)
    assert chunk.heading.endswith("Haircuts")
    assert estimate_tokens(chunk.heading) <= 16
    assert chunk.tokens <= 64


def test_russian_text_is_chunked_at_its_sentences() -> None:
    chunks = chunk_sections([Section("Часы работы", " ".join([RUSSIAN] * 4))], max_tokens=64)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.tokens <= 64
        assert chunk.text.endswith(".")
        assert chunk.tokens == estimate_tokens(shown(chunk))
    assert " ".join(c.text for c in chunks) == " ".join([RUSSIAN] * 4)


def test_chunking_is_deterministic() -> None:
    text = split_markdown("# A\n\n" + "\n\n".join([SENTENCE, RUSSIAN] * 10) + "\n\nQ: x?\nA: y.")
    assert chunk_sections(text, max_tokens=48) == chunk_sections(text, max_tokens=48)
    assert chunk_sections(text, max_tokens=48) != chunk_sections(text, max_tokens=96)


def test_a_budget_too_small_for_a_heading_and_a_question_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        chunk_sections([Section("", "text")], max_tokens=MIN_MAX_TOKENS - 1)


# --- properties ---------------------------------------------------------------------------

_WORD = st.text(alphabet="abcxyzабвгдё0123,.!?", min_size=1, max_size=14)
_PARAGRAPH = st.lists(_WORD, min_size=1, max_size=60).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    paragraphs=st.lists(_PARAGRAPH, min_size=1, max_size=8),
    heading=st.sampled_from(["", "Prices", "Цены > Стрижки"]),
    qa=st.booleans(),
    budget=st.integers(min_value=MIN_MAX_TOKENS, max_value=200),
)
def test_every_word_survives_in_order_within_budget(
    paragraphs: list[str], heading: str, qa: bool, budget: int
) -> None:
    text = "\n\n".join(paragraphs)
    section = Section(heading, text, "qa", "Why?") if qa else Section(heading, text)
    chunks = chunk_sections([section], max_tokens=budget)
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    assert all(chunk.tokens == estimate_tokens(shown(chunk)) <= budget for chunk in chunks)
    bodies = [chunk.text.removeprefix("Q: Why?\nA: ") if qa else chunk.text for chunk in chunks]
    assert " ".join(bodies).split() == text.split()


@settings(max_examples=100, deadline=None)
@given(
    words=st.lists(st.text(alphabet="ab😀я", min_size=1, max_size=300), min_size=1, max_size=20),
    budget=st.integers(min_value=MIN_MAX_TOKENS, max_value=80),
)
def test_over_long_words_lose_no_character(words: list[str], budget: int) -> None:
    chunks = chunk_sections([Section("", " ".join(words))], max_tokens=budget)
    assert all(chunk.tokens <= budget for chunk in chunks)
    assert "".join("".join(chunk.text.split()) for chunk in chunks) == "".join(words)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["# H1", "## H2", "Text line.", "", "Q: q?", "A: a.", "```"])))
def test_markdown_keeps_every_word_of_body_and_headings(lines: list[str]) -> None:
    sections = split_markdown("\n".join(lines))
    words = " ".join(f"{s.heading} {s.question} {s.text}" for s in sections).split()
    for word in ("line.", "q?", "a."):
        expected = sum(line.split().count(word) for line in lines)
        assert words.count(word) == expected
