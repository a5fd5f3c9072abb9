"""Style statistics on a synthetic corpus of the owner's Russian, Ukrainian and English messages."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.language import LATIN
from twin.domain.style import (
    OwnerMessage,
    StyleAccumulator,
    compute_style,
    emoji_clusters,
    render_style,
)

T0 = datetime(2024, 3, 1, 10, 0)

FRIEND, BOSS, ENGLISH, AUNT, DENTIST = 101, 202, 303, 404, "clinic-7"

# (chat, text): a friend on «ты», the boss on «вы», an English colleague, a Ukrainian aunt
CORPUS: list[tuple[object, str]] = [
    (FRIEND, "привет! ты как?"),
    (FRIEND, "привет, давай в 7 у метро)"),
    (FRIEND, "ок))"),
    (FRIEND, "ахаха 😂😂"),
    (FRIEND, "слушай, а ты завтра свободен?"),
    (FRIEND, "Серёга, ты лучший 👍"),
    (FRIEND, "ну давай\nтогда до завтра\nпока"),
    (FRIEND, "мой номер +7 999 123-45-67"),
    (FRIEND, "глянь https://example.com/very/private"),
    (FRIEND, "пока"),
    (BOSS, "Добрый день. Вы сможете посмотреть отчёт сегодня?"),
    (BOSS, "Спасибо, ваши правки учёл."),
    (BOSS, "Добрый день. Отправил вам презентацию."),
    (BOSS, "Хорошо, сделаю к пятнице."),
    (ENGLISH, "hi! see you at 5?"),
    (ENGLISH, "sounds good 👍"),
    (ENGLISH, "thanks, will do…"),
    (ENGLISH, "hi, running late, sorry"),
    (AUNT, "привіт! як справи?"),
    (AUNT, "дякую, у мене все добре, їду додому)"),
    (AUNT, "привет, скоро буду"),
    (DENTIST, "Здравствуйте, Вы могли бы перенести на четверг?"),
]


def corpus() -> list[OwnerMessage]:
    return [
        OwnerMessage(text=text, chat_id=chat, at=T0 + timedelta(minutes=i))  # type: ignore[arg-type]
        for i, (chat, text) in enumerate(CORPUS)
    ]


@pytest.fixture(scope="module")
def profile():
    return compute_style(corpus())


def test_counts_and_lengths(profile) -> None:
    lengths = sorted(len(text) for _, text in CORPUS)
    assert profile.message_count == len(CORPUS)
    assert profile.length_median == lengths[(len(lengths) + 1) // 2 - 1]  # nearest rank
    assert profile.length_p90 == lengths[int(0.9 * len(lengths) + 0.999999) - 1]
    assert profile.length_median <= profile.length_p90


def test_punctuation_and_capitalisation_rates(profile) -> None:
    n = len(CORPUS)
    assert profile.question_rate == round(sum("?" in t for _, t in CORPUS) / n, 3)
    assert profile.exclamation_rate == round(sum("!" in t for _, t in CORPUS) / n, 3)
    assert profile.ellipsis_rate == round(1 / n, 3)
    assert profile.paren_smiley_rate == round(3 / n, 3)  # "метро)", "ок))", "добре)"
    assert profile.trailing_period_rate == round(3 / n, 3)
    assert profile.multiline_rate == round(1 / n, 3)
    capitalised = sum(t[0].isupper() for _, t in CORPUS)
    assert profile.capitalized_rate == round(capitalised / n, 3)


def test_emoji_rate_and_top_emoji(profile) -> None:
    assert profile.emoji_rate == round(3 / len(CORPUS), 3)
    assert profile.top_emoji[:2] == ("👍", "😂")  # two each; ties broken by code point


def test_languages_by_script(profile) -> None:
    langs = dict(profile.languages)
    assert set(langs) == {"ru", LATIN, "uk"}  # Latin script is never guessed as English
    n = len(CORPUS)
    # four English messages, plus the Russian one that is mostly a Latin-script link
    assert langs[LATIN] == round(5 / n, 3)
    assert langs["uk"] == round(2 / n, 3)
    assert langs["ru"] == round((n - 7) / n, 3)
    assert abs(sum(langs.values()) - 1) < 0.01


def test_ukrainian_needs_its_own_letters() -> None:
    # script-based detection: Ukrainian without і/ї/є/ґ reads as Russian
    style = compute_style([OwnerMessage("дякую, все добре", 1, T0)])
    assert style.languages == (("ru", 1.0),)


def test_formality_per_contact(profile) -> None:
    assert profile.formality[FRIEND] == "informal"
    assert profile.formality[BOSS] == "formal"
    assert profile.formality[DENTIST] == "formal"  # a capitalised «Вы»
    assert ENGLISH not in profile.formality  # no pronouns counted at all
    assert AUNT not in profile.formality


def test_greetings_need_to_recur_across_chats(profile) -> None:
    # "привет" opens three messages in two chats; "hi" only two (below the minimum of 3)
    assert "привет" in profile.greetings
    assert "hi" not in profile.greetings
    # a name used in one chat only, "Серёга", never becomes a greeting or a sign-off
    assert all("серёга" not in g for g in profile.greetings + profile.signoffs)


def test_greetings_and_signoffs_on_a_bigger_corpus() -> None:
    messages = []
    for i in range(30):
        chat = i % 3
        messages.append(OwnerMessage(f"привет, как там дела {i}?", chat, T0))
        messages.append(OwnerMessage(f"ну ладно, пока {i}", chat, T0))
        messages.append(OwnerMessage(f"Маша, глянь задачу {i}", 99, T0))  # one chat only
    style = compute_style(messages)
    # both opening phrases occur 30 times; ties are broken alphabetically
    assert style.greetings[:2] == ("ну ладно", "привет")
    assert not any("маша" in g or "задачу" in g for g in style.greetings + style.signoffs)
    assert style.signoffs[0] == "пока"
    messages = [OwnerMessage(f"ок, до завтра{'!' * (i % 2)}", i % 4, T0) for i in range(20)]
    assert compute_style(messages).signoffs[0] == "до завтра"


def test_examples_are_diverse_and_private_ones_excluded(profile) -> None:
    texts = [e.text for e in profile.examples]
    assert 0 < len(texts) <= 8
    assert len(set(texts)) == len(texts)
    assert not any("+7 999" in t or "https://" in t for t in texts)
    assert len({len(t) // 20 for t in texts}) >= 2  # different lengths
    assert len({e.chat_id for e in profile.examples}) >= 3  # different chats


def test_examples_do_not_depend_on_input_order() -> None:
    messages = corpus()
    shuffled = list(messages)
    random.Random(7).shuffle(shuffled)
    assert compute_style(messages).examples == compute_style(shuffled).examples


def test_duplicates_are_never_two_examples() -> None:
    messages = [OwnerMessage("одно и то же сообщение", chat, T0) for chat in range(6)]
    examples = compute_style(messages).examples
    assert [e.text for e in examples] == ["одно и то же сообщение"]


def test_accumulator_resumes_from_saved_state() -> None:
    messages = corpus()
    acc = StyleAccumulator()
    for start in range(0, len(messages), 5):
        acc.add(messages[start : start + 5])
        acc.cursor = {"last": start}
        acc = StyleAccumulator.from_dict(json.loads(json.dumps(acc.to_dict(), ensure_ascii=False)))
    assert acc.cursor == {"last": 20}
    assert acc.profile() == compute_style(messages)
    assert acc.profile().formality[DENTIST] == "formal"  # str chat ids survive JSON


def test_accumulators_merge() -> None:
    messages = corpus()
    left = StyleAccumulator().add(messages[::2])
    right = StyleAccumulator().add(messages[1::2])
    assert left.merge(right).profile() == compute_style(messages)


def test_unknown_state_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        StyleAccumulator.from_dict({"version": 99})


def test_empty_input() -> None:
    style = compute_style([OwnerMessage("   ", 1, T0)])
    assert style.message_count == 0
    assert render_style(style) == ""


def test_emoji_clusters_keep_modifiers_and_flags() -> None:
    assert emoji_clusters("ok 👍🏽 and 👨‍👩‍👧 in 🇺🇦 ❤️!") == ["👍🏽", "👨‍👩‍👧", "🇺🇦", "❤️"]


def test_render_style_for_one_chat(profile) -> None:
    text = render_style(profile.for_chat(FRIEND))
    assert "«ты»" in text
    assert "«вы»" not in text
    assert "привет! ты как?" in text or "пока" in text  # friend's examples only
    assert "Добрый день" not in text  # the boss's examples never leak into the friend's prompt
    boss = render_style(profile.for_chat(BOSS))
    assert "«вы»" in boss
    assert "ты лучший" not in boss


def test_render_brief_is_shorter_and_has_no_examples(profile) -> None:
    narrowed = profile.for_chat(FRIEND)
    brief = render_style(narrowed, detail="brief")
    assert len(brief) < len(render_style(narrowed))
    assert "Examples" not in brief


def test_for_chat_none_drops_everything_chat_specific(profile) -> None:
    neutral = profile.for_chat(None)
    assert neutral.examples == ()
    assert dict(neutral.formality) == {}


@settings(max_examples=50)
@given(
    st.lists(st.tuples(st.integers(min_value=1, max_value=4), st.text(max_size=80)), max_size=40),
    st.integers(min_value=1, max_value=39),
)
def test_any_split_into_batches_gives_the_same_profile(rows, split) -> None:
    messages = [OwnerMessage(text, chat, T0) for chat, text in rows]
    acc = StyleAccumulator().add(messages[:split])
    acc = StyleAccumulator.from_dict(json.loads(json.dumps(acc.to_dict())))
    acc.add(messages[split:])
    assert acc.profile() == compute_style(messages)
