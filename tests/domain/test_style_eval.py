"""What `twin style eval` tests on (twin.domain.style_eval) and how it scores
(twin.domain.style_score): pure functions, no I/O."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from twin.domain.style_eval import Line, corpus_of, hold_out
from twin.domain.style_score import distribution, js_distance, overall, tell_rates

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def lines(*spec: tuple[str, str]) -> list[Line]:
    """("c"|"o"|"t", text): contact, owner, twin."""
    return [
        Line(n + 1, T0 + timedelta(minutes=n), who != "c", text, twin=who == "t")
        for n, (who, text) in enumerate(spec)
    ]


def test_an_answer_is_the_owners_run_of_messages_after_the_contact():
    corpus = corpus_of(
        [
            (
                7,
                lines(
                    ("o", "hey, you there?"),  # the owner wrote first: not an answer
                    ("c", "yes"),
                    ("c", "what's up"),
                    ("o", "ok)"),
                    ("o", "see you at 7"),
                    ("c", "thanks"),
                    ("t", "you're welcome"),  # the twin's reply: neither answer nor owner's
                    ("o", "and bring the keys"),  # after the twin, not after the contact
                    ("c", ""),  # media without a caption: not a turn
                    ("c", "sure"),
                    ("o", "great"),
                ),
            )
        ]
    )
    assert [s.answer for s in corpus.samples] == [("ok)", "see you at 7"), ("great",)]
    first, second = corpus.samples
    assert [t.text for t in first.context] == ["hey, you there?", "yes", "what's up"]
    assert [t.role for t in first.context] == ["owner", "contact", "contact"]
    assert first.ids == (4, 5)
    # the twin's reply is in a later context, as the owner's (the contact saw it so)
    assert ("owner", "you're welcome") in [(t.role, t.text) for t in second.context]
    assert second.context[-1].role == "contact"
    assert [text for _, _, text in corpus.owner] == [
        "hey, you there?", "ok)", "see you at 7", "and bring the keys", "great",
    ]
    assert [text for _, text in corpus.contacts] == ["yes", "what's up", "thanks", "sure"]
    # the reference is the owner's writing without the held-out answers
    assert corpus.reference([first]) == ["hey, you there?", "and bring the keys", "great"]


def test_the_context_is_the_last_turns_before_the_answer():
    spec = [("c", f"q{n}") if n % 2 == 0 else ("o", f"a{n}") for n in range(30)]
    corpus = corpus_of([(1, lines(*spec))], context_turns=5)
    last = corpus.samples[-1]
    assert last.answer == ("a29",)
    assert [t.text for t in last.context] == ["q24", "a25", "q26", "a27", "q28"]


def test_hold_out_is_deterministic_and_spread_over_chats():
    chats = []
    for chat in range(4):
        spec = [("c", "q"), ("o", "a")] * (30 if chat == 0 else 3)
        chats.append((chat, lines(*spec)))
    samples = corpus_of(chats).samples
    held = hold_out(samples, 8, seed=5)
    assert held == hold_out(samples, 8, seed=5)
    assert held != hold_out(samples, 8, seed=6)
    per_chat = [sum(1 for s in held if s.chat_id == chat) for chat in range(4)]
    assert per_chat == [2, 2, 2, 2]  # the chatty chat does not make the whole test
    assert len({(s.chat_id, s.ids) for s in held}) == 8
    # at most half are held out: the rest stay the owner's reference
    assert len(hold_out(samples, 1000, seed=0)) == len(samples) // 2 == 19


def test_distributions_per_message_and_per_answer():
    answers = [("ок)", "щас гляну"), ("Привет! Как ты? 😀",), ("Вы придёте?",)]
    assert distribution("messages", answers) == {"2": 1 / 3, "1": 2 / 3}
    assert distribution("lowercase", answers) == {"lower": 0.5, "upper": 0.5}
    assert distribution("smiley", answers) == {"yes": 0.25, "no": 0.75}
    assert distribution("ending", answers) == {")": 0.25, "none": 0.25, "emoji": 0.25, "?": 0.25}
    assert distribution("ending", [("😀 ok",)]) == {"none": 1.0}  # an emoji, not at the end
    assert distribution("emoji", answers)["yes"] == 0.25
    assert distribution("formality", answers) == {"neither": 1 / 3, "ты": 1 / 3, "вы": 1 / 3}
    languages = distribution("language", [("hello there", "привет", "123")])
    assert languages == {"und-Latn": 0.5, "ru": 0.5}  # by script, as the style profile has it
    assert distribution("length", []) == {}


def test_js_distance():
    p = {"a": 0.5, "b": 0.5}
    assert js_distance(p, p) == 0
    assert js_distance({"a": 1.0}, {"b": 1.0}) == 1
    assert js_distance({}, {}) == 0 and js_distance(p, {}) == 1
    assert math.isclose(js_distance({"a": 1.0}, p), js_distance(p, {"a": 1.0}))
    assert 0 < js_distance({"a": 1.0}, p) < 1


@given(
    st.dictionaries(st.sampled_from("abcde"), st.floats(0.01, 1), min_size=1),
    st.dictionaries(st.sampled_from("abcde"), st.floats(0.01, 1), min_size=1),
)
def test_js_distance_is_a_bounded_symmetric_measure(a, b):
    p = {k: v / sum(a.values()) for k, v in a.items()}
    q = {k: v / sum(b.values()) for k, v in b.items()}
    d = js_distance(p, q)
    assert 0 <= d <= 1
    assert math.isclose(d, js_distance(q, p), abs_tol=1e-12)


def test_tells():
    rates = tell_rates(
        [
            ("Certainly! I'd be happy to help — as an AI I can do that.",),
            ("Конечно! С удовольствием помогу.", "ок"),
            ("ну да",),
        ]
    )
    assert rates == {
        "em_dash": 0.25,
        "ai_phrase": 0.25,
        "polite_opener": 0.5,
        "exclamation": 0.5,
    }
    assert tell_rates([]) == dict.fromkeys(rates, 0.0)


def test_the_score_formula():
    same = {"length": (0.2, 0.2), "emoji": (0.1, 0.1)}
    none = dict.fromkeys(("em_dash", "exclamation"), 0.0)
    assert overall(same, none, none, (0.9, 0.9)).value == 100
    # better than the owner's own held-out answers counts as the ceiling, not above it
    assert overall({"length": (0.0, 0.3)}, none, none, (1.0, 0.5)).value == 100
    far = {"length": (1.0, 0.2), "emoji": (0.6, 0.2)}  # S = (0 + 0.5) / 2
    tells = {"em_dash": 0.5, "exclamation": 0.4}  # the owner: none → T = 1 − 0.9
    score = overall(far, tells, none, (0.2, 0.8))  # A = 0.25
    assert (score.style, score.authorship) == (0.25, 0.25)
    assert math.isclose(score.tells, 0.1)
    assert score.value == round(100 * (0.5 * 0.25 + 0.3 * 0.25 + 0.2 * 0.1))
    # the owner uses tells too: only the twin's excess counts
    assert overall(same, tells, {"em_dash": 0.5, "exclamation": 0.4}, None).tells == 1
    # a feature with nothing of the owner's to compare with (ceiling 1) is left out
    assert overall({"length": (0.0, 0.0), "emoji": (1.0, 1.0)}, none, none, None).style == 1
    assert overall({}, none, none, None).style == 0  # nothing measured: no credit
    # no authorship measured: S and T reweighted
    unmeasured = overall(far, none, none, None)
    assert unmeasured.authorship is None
    assert unmeasured.value == round(100 * (0.5 * 0.25 + 0.2 * 1) / 0.7)
    assert overall(far, none, none, (0.5, 0.0)).authorship is None  # the owner unrecognised
