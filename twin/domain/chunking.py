"""Structure-aware chunking of a knowledge-base document (pure: standard library only).

Two steps, both deterministic.

1. A splitter turns a document's text into `Section`s, one per run of body text under one
   heading path ("Prices > Haircuts") and one per question-and-answer pair:

   * `split_markdown` follows ATX (``#``…``######``) and setext (``===`` / ``---``) headings,
     keeps fenced code as text (never read as headings or Q&A), drops YAML/TOML front matter,
     HTML comments and thematic breaks.
   * `split_plain` cuts at blank lines; a single short line that does not read like a sentence
     and is followed by a real paragraph becomes the heading of what follows (conservatively:
     no sentence punctuation at its end or inside, at most 10 words).

   In both, lines starting ``Q:`` / ``Question:`` / ``Вопрос:`` (also bold, ``**Q:**``) open a
   question that an ``A:`` / ``Answer:`` / ``Ответ:`` line answers; the answer runs to the next
   question, heading or end. A question nobody answers stays ordinary text. Inside a paragraph
   wrapped lines are joined with a space, except list items and table rows, which keep their
   line breaks. `SectionBuilder` is that reader on its own, for adapters that see a format's
   structure themselves (HTML's elements).

2. `chunk_sections` cuts sections into `Chunk`s that fit `max_tokens` (by the same conservative
   estimate the prompt budget uses, `twin.domain.tokens`). A chunk never spans two sections, so
   never two headings. Whole paragraphs are packed greedily; a paragraph that alone is over
   budget is broken into sentences, a sentence into words, and only a single word over budget
   is cut inside. Every piece keeps the whitespace it had, so the chunks of a section, joined
   with single spaces, hold every word of the section in order. A Q&A pair is one chunk
   ``"Q: …\\nA: …"``; an answer too long for one is split and every piece repeats the question.

   A chunk's `tokens` is the estimate of what a caller shows the model: ``heading + "\\n" +
   text`` (the text alone without a heading). So a very long heading is cut to a quarter of the
   budget (keeping its most specific end), and so is the question of a split answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from twin.domain.tokens import estimate_tokens, truncate_to_tokens

__all__ = [
    "HEADING_SEPARATOR",
    "MIN_MAX_TOKENS",
    "Chunk",
    "LineKind",
    "Section",
    "SectionBuilder",
    "SectionKind",
    "chunk_sections",
    "split_markdown",
    "split_plain",
]

SectionKind = Literal["text", "qa"]

HEADING_SEPARATOR = " > "
MIN_MAX_TOKENS = 32  # below this a heading and a question leave no room for the text


@dataclass(frozen=True, slots=True)
class Section:
    """Body text under one heading path ("" when none); for "qa", `text` is the answer."""

    heading: str
    text: str
    kind: SectionKind = "text"
    question: str = ""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable piece: `text` is what the model is shown after the `heading` line."""

    ordinal: int
    heading: str
    text: str
    tokens: int


# --- line kinds of a section body ---------------------------------------------------------

LineKind = Literal["soft", "hard", "code", "end"]
"""soft: a wrapped line, joined to its neighbours with a space; hard: a line break the author
meant (HTML <br>, table rows); code: a line of fenced code, kept as a line and never read as a
Q&A marker; end: no text, it closes an open Q&A pair here (HTML </details>)."""

_Line = tuple[str, LineKind]

_EM = r"(?:\*\*|__|\*|_)"


def _marker(words: str) -> re.Pattern[str]:
    return re.compile(
        rf"^\s*(?P<em>{_EM})?\s*(?:{words})\s*{_EM}?\s*:\s*{_EM}?(?P<rest>.*)$",
        re.IGNORECASE,
    )


_QUESTION = _marker("q|question|вопрос")
_ANSWER = _marker("a|answer|ответ")
_LIST_OR_TABLE = re.compile(r"^\s*(?:[-*+•–]\s|\d{1,3}[.)]\s|\|)")
_SPACES = re.compile(r"[^\S\n]+")


def _marked(pattern: re.Pattern[str], line: str) -> str | None:
    """The text after a Q/A marker (None when `line` has none), without closing emphasis."""
    match = pattern.match(line)
    if match is None:
        return None
    rest, em = match["rest"].strip(), match["em"]
    if em and rest.endswith(em):
        rest = rest[: -len(em)].rstrip()
    return rest


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _paragraphs(lines: Sequence[_Line]) -> str:
    """Blank lines separate paragraphs; inside one, soft lines join with a space."""
    paragraphs: list[str] = []
    current = ""
    previous_kind: LineKind = "soft"
    for text, kind in lines:
        line = _SPACES.sub(" ", text).strip()
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
            continue
        if not current:
            current = line
        elif kind != "soft" or previous_kind != "soft" or _LIST_OR_TABLE.match(line):
            current += "\n" + line
        elif current[-1] == "-" and current[-2:-1].isalpha() and line[0].islower():
            current += line  # a word hyphenated at the end of a wrapped line
        else:
            current += " " + line
        previous_kind = kind
    if current:
        paragraphs.append(current)
    return "\n\n".join(paragraphs)


def _body_sections(heading: str, lines: Sequence[_Line]) -> Iterator[Section]:
    """The sections of one heading's body: its text, with Q&A pairs cut out in order."""
    text: list[_Line] = []
    question: list[_Line] = []
    answer: list[_Line] = []
    raw: list[_Line] = []  # the pair as written, kept as text if it never gets an answer
    state = ""

    def close() -> Iterator[Section]:
        nonlocal state
        asked, said = _one_line(_paragraphs(question)), _paragraphs(answer)
        if state == "a" and asked and said:
            if body := _paragraphs(text):
                yield Section(heading, body)
            text.clear()
            yield Section(heading, said, "qa", asked)
        else:
            text.extend(raw)
        question.clear()
        answer.clear()
        raw.clear()
        state = ""

    for line, kind in lines:
        if kind == "end":
            yield from close()
            text.append(("", "soft"))
            continue
        asked = None if kind == "code" else _marked(_QUESTION, line)
        if asked is not None:
            yield from close()
            state = "q"
            question.append((asked, kind))
        elif state == "q" and kind != "code" and (said := _marked(_ANSWER, line)) is not None:
            state = "a"
            answer.append((said, kind))
        else:
            (question if state == "q" else answer if state == "a" else text).append((line, kind))
        if state:
            raw.append((line, kind))
    yield from close()
    if body := _paragraphs(text):
        yield Section(heading, body)


class SectionBuilder:
    """Collects a document's headings and lines into sections: the splitters' own reader,
    public for adapters that see the structure themselves (HTML). A heading closes the
    sections before it and replaces every heading of its level or deeper in the path; an
    empty line is a paragraph break; Q&A markers are read in soft and hard lines."""

    def __init__(self) -> None:
        self._sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._pending: list[_Line] = []

    def heading(self, level: int, title: str) -> None:
        self._flush()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, _one_line(title)))

    def line(self, text: str, kind: LineKind = "soft") -> None:
        self._pending.append((text, kind))

    def _flush(self) -> None:
        heading = HEADING_SEPARATOR.join(title for _, title in self._path if title)
        self._sections.extend(_body_sections(heading, self._pending))
        self._pending = []

    def finish(self) -> list[Section]:
        self._flush()
        return self._sections


def _lines(text: str) -> list[str]:
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\u2028", "\n").replace("\u2029", "\n\n").replace("\f", "\n\n").split("\n")


# --- Markdown -----------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t](.*))?$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_THEMATIC = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def _front_matter_end(lines: Sequence[str]) -> int:
    """Index of the first line after YAML (---) or TOML (+++) front matter, else 0."""
    if not lines or lines[0].strip() not in ("---", "+++"):
        return 0
    closers = ("---", "...") if lines[0].strip() == "---" else ("+++",)
    for index in range(1, len(lines)):
        if lines[index].strip() in closers:
            return index + 1
    return 0


def split_markdown(text: str) -> list[Section]:
    """Sections of a Markdown document (module docstring)."""
    lines = _lines(_COMMENT.sub("", text))
    builder = SectionBuilder()
    fence = ""
    starts_paragraph = True  # the previous line ended a block: a setext heading may start here
    index = _front_matter_end(lines)
    while index < len(lines):
        line = lines[index]
        index += 1
        if fence:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = ""
                builder.line("")
            else:
                builder.line(line, "code")
            continue
        if match := _FENCE.match(line):
            fence = match[1]
            builder.line("")
        elif match := _ATX.match(line):
            title = (match[2] or "").strip()
            if (bare := title.rstrip("#")) != title and (not bare or bare[-1] in " \t"):
                title = bare  # a closing sequence: "## Prices ##"
            builder.heading(len(match[1]), title)
        elif (
            starts_paragraph
            and line.strip()
            and index < len(lines)
            and (underline := _SETEXT.match(lines[index]))
        ):
            builder.heading(1 if underline[1][0] == "=" else 2, line)
            index += 1
        elif _THEMATIC.match(line) or _SETEXT.match(line):
            builder.line("")  # a rule, or an underline under more than one line
        else:
            builder.line(line)
            starts_paragraph = not line.strip()
            continue
        starts_paragraph = True
    return builder.finish()


# --- plain text ---------------------------------------------------------------------------

_SENTENCE_INSIDE = re.compile(r"[.!?…]\s")


def _heading_like(line: str) -> bool:
    """A short line that does not read as a sentence, a list item or a Q&A marker."""
    line = line.strip()
    return (
        0 < len(line) <= 80
        and len(line.split()) <= 10
        and line[0].isalnum()
        and any(ch.isalpha() for ch in line)
        and line[-1] not in ".,;:!?…"
        and not _SENTENCE_INSIDE.search(line)
        and not _LIST_OR_TABLE.match(line)
        and _marked(_QUESTION, line) is None
        and _marked(_ANSWER, line) is None
    )


def split_plain(text: str) -> list[Section]:
    """Sections of plain text (module docstring): paragraphs, cautious headings, Q&A."""
    paragraphs: list[list[str]] = [[]]
    for line in _lines(text):
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    paragraphs = [paragraph for paragraph in paragraphs if paragraph]

    def lone_heading(index: int) -> bool:
        return len(paragraphs[index]) == 1 and _heading_like(paragraphs[index][0])

    builder = SectionBuilder()
    for index, paragraph in enumerate(paragraphs):
        if lone_heading(index) and index + 1 < len(paragraphs) and not lone_heading(index + 1):
            builder.heading(1, paragraph[0])
            continue
        for line in paragraph:
            builder.line(line)
        builder.line("")
    return builder.finish()


# --- chunking -----------------------------------------------------------------------------

_Atom = tuple[str, str]  # (the whitespace before it, the text)
_SENTENCE_END = ".!?…"
_CLOSERS = "\"'»”’)]"


def _normalise(text: str) -> str:
    """Runs of spaces collapsed, lines stripped, blank-line runs made one paragraph break."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in _lines(text):
        line = _SPACES.sub(" ", line).strip()
        if line:
            current.append(line)
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    if current:
        paragraphs.append("\n".join(current))
    return "\n\n".join(paragraphs)


def _pieces(text: str, *, sentences: bool) -> list[_Atom]:
    """`text` cut at whitespace: at every run (words) or only after a sentence's end or at a
    line break (sentences). The first piece's separator is ""."""
    pieces: list[_Atom] = []
    separator, start = "", 0
    for match in re.finditer(r"\s+", text):
        before = text[start : match.start()]
        if not sentences or "\n" in match[0] or before.rstrip(_CLOSERS)[-1:] in _SENTENCE_END:
            pieces.append((separator, before))
            separator, start = match[0], match.end()
    pieces.append((separator, text[start:]))
    return [piece for piece in pieces if piece[1]]


def _longest(low: int, high: int, ok: Callable[[int], bool]) -> int:
    """The largest k in [low, high] with ok(k), ok being true up to some k and false after;
    ok(low) is taken as true. Gallops first, so probes stay near the answer."""
    step = 1
    while low < high:
        probe = min(low + step, high)
        if not ok(probe):
            high = probe - 1
            break
        low, step = probe, step * 2
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _atoms(text: str, separator: str, fits: Callable[[str], bool], level: int) -> Iterator[_Atom]:
    """`text` as pieces that each fit alone: whole (level 0 is a paragraph), else its
    sentences, else its words, else (one word over budget) cut inside the word."""
    if fits(text):
        yield separator, text
    elif level < 2:
        parts = _pieces(text, sentences=level == 0)
        for index, (inner, part) in enumerate(parts):
            yield from _atoms(part, inner if index else separator, fits, level + 1)
    else:
        start = 0
        while start < len(text):
            end = _longest(start + 1, len(text), lambda k, s=start: fits(text[s:k]))
            yield (separator if start == 0 else ""), text[start:end]
            start = end


def _join(atoms: Sequence[_Atom], start: int, end: int) -> str:
    return atoms[start][1] + "".join(separator + text for separator, text in atoms[start + 1 : end])


def _pack(text: str, fits: Callable[[str], bool]) -> list[str]:
    """`text` (normalised) in as few greedy pieces as fit: paragraph, sentence, word atoms."""
    atoms: list[_Atom] = []
    for index, paragraph in enumerate(text.split("\n\n")):
        atoms.extend(_atoms(paragraph, "\n\n" if index else "", fits, 0))
    pieces: list[str] = []
    start = 0
    while start < len(atoms):
        end = _longest(start + 1, len(atoms), lambda k, s=start: fits(_join(atoms, s, k)))
        pieces.append(_join(atoms, start, end))
        start = end
    return pieces


def chunk_sections(sections: Sequence[Section], *, max_tokens: int = 256) -> list[Chunk]:
    """The sections cut into chunks of at most `max_tokens` (module docstring); empty ones
    dropped, a Q&A pair without a question treated as text, one without an answer dropped."""
    if max_tokens < MIN_MAX_TOKENS:
        raise ValueError(f"max_tokens must be at least {MIN_MAX_TOKENS}")
    chunks: list[Chunk] = []
    for section in sections:
        heading = truncate_to_tokens(_one_line(section.heading), max_tokens // 4, keep="end")
        lead = f"{heading}\n" if heading else ""
        body = _normalise(section.text)
        question = _one_line(section.question) if section.kind == "qa" else ""

        def fits(text: str, lead: str = lead) -> bool:
            return estimate_tokens(lead + text) <= max_tokens

        if not body:
            continue
        if not question:
            texts = _pack(body, fits)
        elif fits(whole := f"Q: {question}\nA: {body}"):
            texts = [whole]
        else:
            asked = truncate_to_tokens(question, max_tokens // 4, keep="start")
            prefix = f"Q: {asked}\nA: "
            texts = [prefix + piece for piece in _pack(body, lambda t, p=prefix: fits(p + t))]
        for text in texts:
            chunks.append(Chunk(len(chunks), heading, text, estimate_tokens(lead + text)))
    return chunks
