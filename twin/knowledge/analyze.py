"""Words → index terms: the one analyzer of the knowledge base, the same for a chunk when it is
stored and for a question when it is asked, on SQLite and PostgreSQL alike.

Text is lowercased, `ё` folded into `е`, cut into words (`\\w+`), and each word stemmed with
Snowball (snowballstemmer, the maintained pure-Python port): Russian for Cyrillic words,
English for Latin ones; numbers stay as written. Snowball's Russian is aggressive on some
nouns ("замена" → `зам`, but "заменить" → `замен`; "запись" → `зап`, "записаться" →
`записа`), so a Cyrillic word longer than `PREFIX` letters is also indexed by its first
`PREFIX` letters (`замен`, `запис`): the two forms meet on that term, and bm25 weighs such
shared prefixes like any other term. So "заменить цепь" finds "замена цепи", "refunds" finds
"refund". The databases only tokenize the
stored terms on spaces (FTS5 `unicode61`, PostgreSQL's `simple` configuration): what matches
is decided here, once.

A question drops the function words of both languages (a short list: with bm25 they would
only add noise and cost), keeps each term once, at most `MAX_QUERY_TERMS`, adds at most
`MAX_SYNONYM_TERMS` terms of synonyms (twin.knowledge.synonyms), and is quoted for the MATCH
syntax of each backend by the repository.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import snowballstemmer

    from twin.knowledge.synonyms import Synonyms

__all__ = [
    "MAX_QUERY_TERMS",
    "MAX_SYNONYM_TERMS",
    "PREFIX",
    "STOPWORDS",
    "index_terms",
    "query_terms",
    "stem",
    "terms_of",
    "words",
]

MAX_QUERY_TERMS = 32
MAX_SYNONYM_TERMS = 16
PREFIX = 5
_WORD = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[а-я]")
_LATIN = re.compile(r"[a-z]")
_local = threading.local()  # a Snowball stemmer keeps state between calls: one per thread

_STOPWORD_TEXT = """
    и в во не что он на я с со как а то все она так его но да ты к у же вы за бы по только ее
    мне было вот от меня еще нет о из ему теперь когда даже ну вдруг ли если уже или ни быть был
    него до вас нибудь опять уж вам ведь там потом себя ничего ей может они тут где есть надо
    ней для мы тебя их чем была сам чтоб без будто чего раз тоже себе под будет ж тогда кто этот
    того потому этого какой совсем ним здесь этом один почти мой тем чтобы нее сейчас были куда
    зачем всех никогда можно при наконец два об другой хоть после над больше тот через эти нас
    про всего них какая много разве три эту моя впрочем хорошо свою этой перед иногда лучше чуть
    том нельзя такой им более всегда конечно всю между это вами ваш ваша ваше ваши сколько какие
    каков какова каково который которая которое которые есть привет здравствуйте скажите
    которого которой которому которым которых которую которыми котором какого какому каким каких
    какую какое каком какими этого этому этим этих эту этом этими своего своей свои своих своим
    свое своя свою своими всей всем всеми вся весь наш наша наше наши нашего нашей нашим нашу
    наших вашего вашей вашим вашу ваших моего моей моим мою мои моих твой твоя твое твои
    подскажите пожалуйста спасибо добрый день a an the and or but if of at by for with about to
    from in on is are was were be been being do does did have has had i you he she it we they me
    my your our their this that these those what which who whom how when where why can could
    would should will shall may might must there here so than too very just not no yes please hi
    hello thanks thank hey
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def _stemmers() -> tuple[snowballstemmer.stemmer, snowballstemmer.stemmer]:
    pair = getattr(_local, "pair", None)
    if pair is None:
        # On first use: the package loads every language's stemmer (3 MB), which a twin
        # without knowledge or corrections never needs.
        import snowballstemmer

        pair = (snowballstemmer.stemmer("russian"), snowballstemmer.stemmer("english"))
        _local.pair = pair
    return pair


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """One lowercased word's index term."""
    russian, english = _stemmers()
    if _CYRILLIC.search(word):
        return russian.stemWord(word)
    if _LATIN.search(word) and word.isalpha():
        return english.stemWord(word)
    return word


@functools.lru_cache(maxsize=65536)
def terms_of(word: str) -> tuple[str, ...]:
    """A lowercased word's index terms: its stem, and its prefix for a long Cyrillic word."""
    term = stem(word)
    if len(word) > PREFIX and _CYRILLIC.search(word):
        prefix = word[:PREFIX]
        if prefix != term:
            return (term, prefix)
    return (term,)


def words(text: str) -> list[str]:
    """The text's words, lowercased, `ё` folded into `е`."""
    return _WORD.findall(text.lower().replace("ё", "е"))


def index_terms(*texts: str) -> str:
    """The stored terms of a chunk (its heading and text), separated by spaces."""
    return " ".join(term for text in texts for word in words(text) for term in terms_of(word))


def query_terms(text: str, synonyms: Synonyms | None = None) -> list[str]:
    """A question's distinct content terms, in order of appearance (at most MAX_QUERY_TERMS;
    the latest words win when there are more: the question's end is the newest turn), then
    the terms its words' synonyms add (at most MAX_SYNONYM_TERMS)."""
    every = words(text)
    seen: dict[str, None] = {}
    start = 0  # the earliest word synonyms look at: all of them, unless the cap cut some
    for index in range(len(every) - 1, -1, -1):
        word = every[index]
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        if len(seen) >= MAX_QUERY_TERMS:
            start = index + 1
            break
        for term in reversed(terms_of(word)):
            if term not in seen:
                seen[term] = None
    terms = list(reversed(seen))[-MAX_QUERY_TERMS:]
    if synonyms is None or not len(synonyms):
        return terms
    # phrases match on the words in order, function words included ("pick up", "money back")
    have = set(terms)
    extra = [term for term in synonyms.expand(every[start:]) if term not in have]
    return terms + extra[:MAX_SYNONYM_TERMS]
