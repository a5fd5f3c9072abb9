from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twin.domain.models import ChatKind, IncomingMessage, Sender, SkipReason
from twin.domain.policies.recipients import RecipientRules, check_recipient, normalize_recipient

CONTACT = Sender(id=42, name="Alice", username="Alice_W", is_contact=True, is_bot=False)
STRANGER = Sender(id=77, name="Bob", username=None, is_contact=False, is_bot=False)


def message(
    sender: Sender = CONTACT, chat_kind: ChatKind = ChatKind.PRIVATE, **kw: object
) -> IncomingMessage:
    chat_id = kw.pop("chat_id", sender.id if chat_kind is ChatKind.PRIVATE else -100500)
    return IncomingMessage(
        account="main",
        chat_id=chat_id,  # type: ignore[arg-type]
        chat_kind=chat_kind,
        message_id=1,
        sender=sender,
        date=datetime(2025, 1, 6, 12, tzinfo=UTC),
        text="hello",
        **kw,  # type: ignore[arg-type]
    )


def check(rules: RecipientRules, msg: IncomingMessage, *, new: bool = False) -> SkipReason | None:
    return check_recipient(rules, msg, chat_is_new=new)


def test_defaults_answer_every_private_chat() -> None:
    rules = RecipientRules()
    for sender in (CONTACT, STRANGER):
        for new in (True, False):
            assert check(rules, message(sender), new=new) is None


class TestHardRules:
    """No configuration, not even the include list, makes the twin answer these."""

    ALL_IN = RecipientRules(include=frozenset({42, 77, -100500, 999, "@alice_w"}))

    def test_bot(self) -> None:
        bot = replace(CONTACT, is_bot=True)
        assert check(self.ALL_IN, message(bot)) is SkipReason.BOT

    def test_channel(self) -> None:
        msg = message(chat_kind=ChatKind.CHANNEL, chat_id=-100500)
        assert check(self.ALL_IN, msg) is SkipReason.CHANNEL

    def test_saved_messages(self) -> None:
        me = Sender(id=999, name="Me", username=None, is_contact=False, is_bot=False, is_self=True)
        assert check(self.ALL_IN, message(me, ChatKind.SAVED)) is SkipReason.SAVED_MESSAGES

    def test_own_message(self) -> None:
        me = Sender(id=999, name="Me", username=None, is_contact=False, is_bot=False, is_self=True)
        assert check(self.ALL_IN, message(me, chat_id=42)) is SkipReason.OWN_MESSAGE

    def test_service_message(self) -> None:
        assert check(self.ALL_IN, message(is_service=True)) is SkipReason.SERVICE

    def test_service_in_a_group_even_when_mentioned(self) -> None:
        msg = message(chat_kind=ChatKind.GROUP, is_service=True, mentions_owner=True)
        assert check(RecipientRules(), msg) is SkipReason.SERVICE


class TestCategories:
    @pytest.mark.parametrize(
        ("flag", "sender", "new", "reason"),
        [
            ("contacts", CONTACT, False, SkipReason.CONTACT),
            ("non_contacts", STRANGER, False, SkipReason.NON_CONTACT),
            ("new_chats", CONTACT, True, SkipReason.NEW_CHAT),
            ("existing_chats", CONTACT, False, SkipReason.EXISTING_CHAT),
        ],
    )
    def test_each_flag_removes_its_category(
        self, flag: str, sender: Sender, new: bool, reason: SkipReason
    ) -> None:
        rules = replace(RecipientRules(), **{flag: False})
        assert check(rules, message(sender), new=new) is reason

    @pytest.mark.parametrize(
        ("flag", "sender", "new"),
        [
            ("contacts", STRANGER, False),
            ("non_contacts", CONTACT, False),
            ("new_chats", CONTACT, False),
            ("existing_chats", CONTACT, True),
        ],
    )
    def test_a_flag_leaves_the_other_categories_alone(
        self, flag: str, sender: Sender, new: bool
    ) -> None:
        rules = replace(RecipientRules(), **{flag: False})
        assert check(rules, message(sender), new=new) is None

    def test_axes_combine_as_filters(self) -> None:
        # new chats allowed but non-contacts not: a new chat with a stranger is still skipped
        rules = RecipientRules(non_contacts=False)
        assert check(rules, message(STRANGER), new=True) is SkipReason.NON_CONTACT

    def test_all_flags_off_means_only_the_include_list(self) -> None:
        rules = RecipientRules(
            existing_chats=False, new_chats=False, contacts=False, non_contacts=False
        )
        assert check(rules, message()) is SkipReason.NOT_INCLUDED
        assert check(replace(rules, include=frozenset({42})), message()) is None


class TestIncludeExclude:
    def test_include_overrides_category_flags(self) -> None:
        rules = RecipientRules(non_contacts=False, new_chats=False, include=frozenset({77}))
        assert check(rules, message(STRANGER), new=True) is None
        other = replace(STRANGER, id=78)
        assert check(rules, message(other), new=True) is SkipReason.NON_CONTACT

    def test_include_by_username_is_case_insensitive(self) -> None:
        rules = RecipientRules(contacts=False, include=frozenset({"@ALICE_w"}))
        assert check(rules, message()) is None

    @pytest.mark.parametrize("entry", [42, "42", "@alice_w", "Alice_W", "@ALICE_W"])
    def test_exclude_by_id_or_username(self, entry: int | str) -> None:
        rules = RecipientRules(exclude=frozenset({entry}))
        assert check(rules, message()) is SkipReason.EXCLUDED
        assert check(rules, message(STRANGER)) is None

    def test_exclude_wins_over_include(self) -> None:
        rules = RecipientRules(include=frozenset({42}), exclude=frozenset({"@alice_w"}))
        assert check(rules, message()) is SkipReason.EXCLUDED

    def test_exclude_a_whole_group_by_chat_id(self) -> None:
        rules = RecipientRules(exclude=frozenset({-100500}))
        msg = message(chat_kind=ChatKind.SUPERGROUP, mentions_owner=True)
        assert check(rules, msg) is SkipReason.EXCLUDED

    def test_excluded_sender_is_skipped_in_groups_too(self) -> None:
        rules = RecipientRules(exclude=frozenset({42}))
        msg = message(chat_kind=ChatKind.GROUP, mentions_owner=True)
        assert check(rules, msg) is SkipReason.EXCLUDED

    def test_lists_accept_any_iterable_and_are_normalised(self) -> None:
        rules = RecipientRules(include=["@Bob_X", "123"], exclude=("-100500",))  # type: ignore[arg-type]
        assert rules.include == frozenset({"@bob_x", 123})
        assert rules.exclude == frozenset({-100500})

    def test_bad_entry_names_its_list(self) -> None:
        with pytest.raises(ValueError, match=r"^twin\.exclude: 'not a user' is not a chat id or @"):
            RecipientRules(exclude=frozenset({"not a user"}))


class TestGroups:
    @pytest.mark.parametrize("kind", [ChatKind.GROUP, ChatKind.SUPERGROUP])
    def test_unaddressed_group_message_is_skipped(self, kind: ChatKind) -> None:
        assert check(RecipientRules(), message(chat_kind=kind)) is SkipReason.GROUP_NOT_ADDRESSED

    @pytest.mark.parametrize("how", ["mentions_owner", "replies_to_owner"])
    def test_mention_or_reply_addresses_the_owner(self, how: str) -> None:
        msg = message(chat_kind=ChatKind.GROUP, **{how: True})
        assert check(RecipientRules(), msg) is None

    def test_toggle_off_means_groups_never(self) -> None:
        rules = RecipientRules(groups_when_mentioned=False, include=frozenset({-100500}))
        msg = message(chat_kind=ChatKind.GROUP, mentions_owner=True, replies_to_owner=True)
        assert check(rules, msg) is SkipReason.GROUPS_DISABLED

    def test_including_a_group_does_not_waive_the_mention(self) -> None:
        rules = RecipientRules(include=frozenset({-100500}))
        assert check(rules, message(chat_kind=ChatKind.GROUP)) is SkipReason.GROUP_NOT_ADDRESSED

    def test_private_chat_unaffected_by_group_toggle(self) -> None:
        assert check(RecipientRules(groups_when_mentioned=False), message()) is None


class TestNormalize:
    @pytest.mark.parametrize(
        ("entry", "expected"),
        [
            (123, 123),
            ("123", 123),
            (" -100123 ", -100123),
            ("@Durov", "@durov"),
            ("durov", "@durov"),
            ("a_b_c", "@a_b_c"),
        ],
    )
    def test_valid(self, entry: int | str, expected: int | str) -> None:
        assert normalize_recipient(entry) == expected

    @pytest.mark.parametrize("entry", ["", "@", "two words", "@1abc", "ab", True])
    def test_invalid(self, entry: object) -> None:
        with pytest.raises(ValueError, match=r"^twin\.include: "):
            normalize_recipient(entry, field_name="twin.include")  # type: ignore[arg-type]


senders = st.builds(
    Sender,
    id=st.integers(1, 50),
    name=st.just("x"),
    username=st.sampled_from([None, "alice_w", "Bob_X", "carol"]),
    is_contact=st.booleans(),
    is_bot=st.booleans(),
    is_self=st.booleans(),
)
keys = st.one_of(st.integers(1, 50), st.sampled_from(["@alice_w", "@bob_x", "@carol"]))
rules_strategy = st.builds(
    RecipientRules,
    existing_chats=st.booleans(),
    new_chats=st.booleans(),
    contacts=st.booleans(),
    non_contacts=st.booleans(),
    include=st.frozensets(keys, max_size=4),
    exclude=st.frozensets(keys, max_size=4),
    groups_when_mentioned=st.booleans(),
    exclude_selected=st.booleans(),
)


@given(
    rules=rules_strategy,
    sender=senders,
    kind=st.sampled_from(list(ChatKind)),
    service=st.booleans(),
    mentioned=st.booleans(),
    new=st.booleans(),
)
def test_properties(
    rules: RecipientRules,
    sender: Sender,
    kind: ChatKind,
    service: bool,
    mentioned: bool,
    new: bool,
) -> None:
    msg = message(sender, kind, is_service=service, mentions_owner=mentioned)
    reason = check(rules, msg, new=new)
    if reason is None:
        # the hard rules always hold
        assert not (sender.is_bot or sender.is_self or service)
        assert kind not in (ChatKind.CHANNEL, ChatKind.SAVED)
        if msg.is_group:
            assert rules.groups_when_mentioned and mentioned
    sender_keys = {sender.id, msg.chat_id} | (
        {"@" + sender.username.lower()} if sender.username else set()
    )
    if sender_keys & rules.exclude:
        assert reason is not None
    # the include list can only allow more, never less
    widened = check(replace(rules, include=rules.include | sender_keys), msg, new=new)
    assert widened is None or reason is not None


# --- Telegram Business's documented semantics, rule by rule ---------------------------------
#
# BusinessRecipients (core.telegram.org, constructor businessRecipients): the flags
# existing_chats, new_chats, contacts, non_contacts and the users list *select* chats, as a
# union; exclude_selected = false answers the selected chats ("Only selected chats"), true
# answers every private chat except them ("All chats except…"). Business bots also have users
# that are always excluded. The twin's config translates as: flags and exclude_selected as
# they are; Telegram's users list is `include` without exclude_selected and `exclude` with it;
# the always-excluded users are `exclude`.

FLAGS = ("existing_chats", "new_chats", "contacts", "non_contacts")


def telegram_answers(
    flags: dict[str, bool], exclude_selected: bool, *, new: bool, contact: bool, listed: bool
) -> bool:
    """The reference: Telegram's documented rule, written from the docs, not from the code."""
    selected = (
        (flags["existing_chats"] and not new)
        or (flags["new_chats"] and new)
        or (flags["contacts"] and contact)
        or (flags["non_contacts"] and not contact)
        or listed
    )
    return selected != exclude_selected


def twin_filters(flags: dict[str, bool], *, new: bool, contact: bool, listed: bool) -> bool:
    """The twin's documented "Only selected chats" (exclude_selected = false): the include list,
    else the two axes as filters (all four off: only the include list)."""
    if listed:
        return True
    if not any(flags.values()):
        return False
    by_contact = flags["contacts"] if contact else flags["non_contacts"]
    by_age = flags["new_chats"] if new else flags["existing_chats"]
    return by_contact and by_age


def twin_answers(
    flags: dict[str, bool], exclude_selected: bool, *, new: bool, contact: bool, listed: bool
) -> bool:
    sender = CONTACT if contact else STRANGER
    lists: dict[str, frozenset[int]] = {}
    if listed:
        lists["exclude" if exclude_selected else "include"] = frozenset({sender.id})
    rules = RecipientRules(**flags, exclude_selected=exclude_selected, **lists)
    return check(rules, message(sender), new=new) is None


FLAG_SETS = [
    dict(zip(FLAGS, bits, strict=True)) for bits in itertools.product((False, True), repeat=4)
]
CHATS = list(itertools.product((True, False), repeat=3))  # (new, contact, listed)


def _flags_id(flags: dict[str, bool]) -> str:
    return "+".join(name for name, on in flags.items() if on) or "none"


@pytest.mark.parametrize("flags", FLAG_SETS, ids=_flags_id)
@pytest.mark.parametrize(("new", "contact", "listed"), CHATS, ids=lambda v: str(v))
def test_all_chats_except_is_telegrams_rule_exactly(
    flags: dict[str, bool], new: bool, contact: bool, listed: bool
) -> None:
    chat = {"new": new, "contact": contact, "listed": listed}
    assert twin_answers(flags, True, **chat) == telegram_answers(flags, True, **chat)


@pytest.mark.parametrize("flags", FLAG_SETS, ids=_flags_id)
@pytest.mark.parametrize(("new", "contact", "listed"), CHATS, ids=lambda v: str(v))
def test_only_selected_chats_is_the_documented_filter(
    flags: dict[str, bool], new: bool, contact: bool, listed: bool
) -> None:
    chat = {"new": new, "contact": contact, "listed": listed}
    assert twin_answers(flags, False, **chat) == twin_filters(flags, **chat)


@pytest.mark.parametrize("flags", FLAG_SETS, ids=_flags_id)
def test_only_selected_chats_differs_from_telegram_exactly_when_the_flags_are_mixed(
    flags: dict[str, bool],
) -> None:
    """The one documented difference: with the four flags all on or all off the twin and
    Telegram agree on every chat; with a mix (Telegram: union, the twin: filters) they differ on
    some chat, and never on a listed one."""
    differ = [
        (new, contact)
        for new, contact, listed in CHATS
        if twin_answers(flags, False, new=new, contact=contact, listed=listed)
        != telegram_answers(flags, False, new=new, contact=contact, listed=listed)
    ]
    mixed = len(set(flags.values())) == 2
    assert bool(differ) == mixed
    # where they differ, the twin answers less: a filter never widens Telegram's union
    for new, contact in differ:
        assert telegram_answers(flags, False, new=new, contact=contact, listed=False)


# The same rules as a readable table: (rules, chat new?, contact?, Telegram answers, the twin's
# reason or None when it answers).
def _rules(**kw: object) -> RecipientRules:
    off = dict.fromkeys(FLAGS, False)
    return RecipientRules(**{**off, **kw})  # type: ignore[arg-type]


# fmt: off
TABLE = [
    # "Only selected chats"
    ("everyone", RecipientRules(), True, False, True, None),
    ("nobody but the list", _rules(), False, True, False, SkipReason.NOT_INCLUDED),
    ("list", _rules(include=frozenset({42})), False, True, True, None),
    # Telegram: contacts ticked alone = contacts; the twin: filters, the age axis is empty
    ("contacts ticked alone", _rules(contacts=True), False, True, True, SkipReason.EXISTING_CHAT),
    # the twin's way to say "contacts only": turn non-contacts off (Telegram: union = everyone)
    ("non_contacts off", RecipientRules(non_contacts=False), True, False, True,
     SkipReason.NON_CONTACT),
    ("new_chats off", RecipientRules(new_chats=False), True, True, True, SkipReason.NEW_CHAT),
    ("existing_chats off", RecipientRules(existing_chats=False), False, True, True,
     SkipReason.EXISTING_CHAT),
    ("contacts off", RecipientRules(contacts=False), False, True, True, SkipReason.CONTACT),
    # "All chats except…": a ticked category is left out, as in Telegram
    ("except contacts: contact", _rules(contacts=True, exclude_selected=True), False, True, False,
     SkipReason.CONTACT),
    ("except contacts: stranger", _rules(contacts=True, exclude_selected=True), False, False,
     True, None),
    ("except non-contacts", _rules(non_contacts=True, exclude_selected=True), True, False, False,
     SkipReason.NON_CONTACT),
    ("except new chats", _rules(new_chats=True, exclude_selected=True), True, True, False,
     SkipReason.NEW_CHAT),
    ("except new chats: existing", _rules(new_chats=True, exclude_selected=True), False, True,
     True, None),
    ("except existing chats", _rules(existing_chats=True, exclude_selected=True), False, False,
     False, SkipReason.EXISTING_CHAT),
    ("except nothing", _rules(exclude_selected=True), False, False, True, None),
    ("except the list", _rules(exclude_selected=True, exclude=frozenset({42})), True, True, False,
     SkipReason.EXCLUDED),
    ("except contacts, but included", _rules(contacts=True, exclude_selected=True,
     include=frozenset({42})), False, True, False, None),
]
# fmt: on


@pytest.mark.parametrize(
    ("rules", "new", "contact", "telegram", "reason"),
    [row[1:] for row in TABLE],
    ids=[row[0] for row in TABLE],
)
def test_rule_table(
    rules: RecipientRules, new: bool, contact: bool, telegram: bool, reason: SkipReason | None
) -> None:
    assert check(rules, message(CONTACT if contact else STRANGER), new=new) is reason
    flags = {name: getattr(rules, name) for name in FLAGS}
    listed = bool(rules.include | rules.exclude)
    assert (
        telegram_answers(flags, rules.exclude_selected, new=new, contact=contact, listed=listed)
        is telegram
    )


def test_exclude_selected_is_about_private_chats_only() -> None:
    rules = _rules(contacts=True, non_contacts=True, exclude_selected=True)
    assert check(rules, message()) is SkipReason.CONTACT
    group = message(chat_kind=ChatKind.GROUP, mentions_owner=True)
    assert check(rules, group) is None
