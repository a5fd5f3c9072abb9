"""A knowledge-base document's bytes → its `Section`s, or a `DocumentError` naming the file.

The adapter between file formats and the pure chunker (`twin.domain.chunking`): `kind_of` tells
what a file is (extension, else content type, else its bytes); text is decoded and each format's
structure handed over as sections:

* text and Markdown: `split_plain` / `split_markdown`.
* HTML (the standard library's `html.parser`): h1–h6 make the heading path (the <title> stands
  in for a missing h1); p, li, dd, blockquote, pre and text directly in a div are paragraphs,
  but a table row stays one line, its cells joined by " | ", so "Haircut | 500" stays together;
  <br> is a line break; <dt>/<dd> and <details><summary> pairs are Q&A; script, style,
  noscript, template and <head> are skipped; the parser decodes entities.
* PDF (pypdf's text layer, page by page; a page break is a paragraph break) → `split_plain`;
  a line much shorter than the page's others ends a paragraph. No text on any page is a scan:
  an error, not an empty document.
* Q&A: JSON (a list of {question, answer} — also q/a, вопрос/ответ — objects, or {"items": …}
  / {"qa": …}) or CSV (a header naming question and answer columns, or exactly two columns);
  an optional category/topic/heading field is the pair's heading.

Text is UTF-8 (BOM or not), UTF-16 with a BOM, or — old Russian files — cp1251 when that
reads as text (Cyrillic, next to no control characters); NUL characters are dropped. Every
failure (undecodable bytes, an unsupported binary format, a corrupt or encrypted PDF, a bad Q&A
row) is a `DocumentError`, an `InvalidInput` whose message starts with the file's name: nothing a
library raises while reading an upload escapes as anything else.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Any, Literal

from twin.domain.chunking import LineKind, Section, SectionBuilder, split_markdown, split_plain
from twin.errors import InvalidInput, describe

__all__ = [
    "DocumentError",
    "DocumentKind",
    "ParsedDocument",
    "kind_of",
    "parse_document",
    "parse_text",
]

DocumentKind = Literal["text", "markdown", "html", "pdf", "qa"]


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    name: str
    kind: DocumentKind
    sections: tuple[Section, ...]


class DocumentError(InvalidInput):
    """A document that cannot be read: the message is "<name>: <reason>"."""

    def __init__(self, name: str, reason: str, *, field: str = "document") -> None:
        self.name = name
        self.reason = reason
        super().__init__(field, f"{name}: {reason}")


# --- what a file is -----------------------------------------------------------------------


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_KIND_NAMES: tuple[tuple[DocumentKind, str], ...] = (  # extensions and content types
    ("text", ".txt .text text/plain"),
    ("markdown", ".md .markdown text/markdown text/x-markdown"),
    ("html", ".html .htm .xhtml text/html application/xhtml+xml"),
    ("pdf", ".pdf application/pdf"),
    ("qa", ".json .csv application/json text/csv"),
)
_KINDS = {name: kind for kind, names in _KIND_NAMES for name in names.split()}
_UNSUPPORTED_EXTENSIONS = _names(
    ".doc .docx .odt .rtf .pages .xls .xlsx .ods .ppt .pptx .odp .epub .djvu .png .jpg .jpeg .gif "
    ".webp .bmp .tif .tiff .heic .svg .zip .gz .tgz .tar .7z .rar .mp3 .ogg .oga .wav .m4a .mp4 "
    ".mov .avi .webm .exe .dll .bin"
)
_BINARY_TYPE_PREFIXES = ("image/", "audio/", "video/", "font/")
_BINARY_TYPES = _names(
    "application/zip application/gzip application/msword application/rtf "
    "application/vnd.ms-excel application/vnd.ms-powerpoint"
)
_MAGIC = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (Word, Excel, …)"),
    (b"\xd0\xcf\x11\xe0", "an old Office document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)
_UNSUPPORTED_HINT = "upload it as PDF, HTML, Markdown or plain text"


def kind_of(name: str, data: bytes, content_type: str | None = None) -> DocumentKind:
    """What the document is: by the name's extension, else the content type, else the bytes."""
    extension = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    if extension in _KINDS:
        return _KINDS[extension]
    if extension in _UNSUPPORTED_EXTENSIONS:
        raise DocumentError(name, f"unsupported file type {extension}: {_UNSUPPORTED_HINT}")
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime in _KINDS:
        return _KINDS[mime]
    if mime in _BINARY_TYPES or mime.startswith(_BINARY_TYPE_PREFIXES) or "officedocument" in mime:
        raise DocumentError(name, f"unsupported content type {mime}: {_UNSUPPORTED_HINT}")
    if b"%PDF-" in data[:1024]:
        return "pdf"
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DocumentError(name, f"unsupported file: {what}; {_UNSUPPORTED_HINT}")
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "html"
    return "text"


# --- text ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x01-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_CP1251_TEXT = re.compile(r"[\u0400-\u045f\u0490\u0491«»—–…№‘’“”„•\u00a0°±§©®™€]")


def _readable(text: str) -> bool:
    """Text rather than binary read as text: control characters at most one in a thousand."""
    return len(_CONTROL.findall(text)) * 1000 <= len(text)


def _looks_cp1251(text: str) -> bool:
    """cp1251-decoded bytes that read as Russian (or Ukrainian…) text, not binary noise."""
    foreign = [ch for ch in text if ord(ch) >= 128]
    typical = sum(1 for ch in foreign if _CP1251_TEXT.match(ch))
    return _readable(text) and typical >= 0.95 * len(foreign)


def _clean(text: str) -> str:
    return text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


def _decode(name: str, data: bytes, charset: str | None = None) -> str:
    """The bytes as text (module docstring), or DocumentError."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # a UTF-16 byte order mark
        try:
            return _clean(data.decode("utf-16"))
        except UnicodeDecodeError:
            raise DocumentError(name, "not valid UTF-16 text") from None
    candidates = [charset] if charset else []
    for codec in [*candidates, "utf-8-sig"]:
        try:
            text = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if _readable(text.replace("\x00", "")):
            return _clean(text)
        raise DocumentError(name, "binary data, not text")
    try:
        text = data.decode("cp1251")
    except UnicodeDecodeError:
        text = ""
    if text and _looks_cp1251(text):
        return _clean(text)
    raise DocumentError(name, "not UTF-8 text")


# --- HTML ---------------------------------------------------------------------------------

_SKIP = _names("script style noscript template head svg iframe object")
_BLOCKS = _names(
    "p li dd dt td th tr blockquote pre div section article main header footer nav aside ul ol dl "
    "table thead tbody tfoot caption form figure figcaption address hr details summary body center "
    "fieldset legend"
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_Event = tuple[int, str, LineKind]  # (heading level, title, "soft") or (0, line, its kind)


class _Html(HTMLParser):
    """HTML → the section builder's input, kept as events until the end (the <title> heads the
    path only when the page has no h1). A <dt>/<dd> or <summary>/<details> pair is written as
    "Q: …" / "A: …" lines, so the one Q&A reader (twin.domain.chunking) pairs them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[_Event] = []
        self.title = ""
        self.has_h1 = False
        self._skip: list[str] = []
        self._in_title = False
        self._heading: tuple[int, list[str]] | None = None
        self._pre = 0
        self._buffer: list[str] = []
        self._cells: list[str] | None = None  # the open table row's cells
        self._prefix = ""  # "Q: " / "A: " for the paragraph being read
        self._answer_next = False  # after </summary>: the next paragraph answers it

    def handle_starttag(self, tag: str, attrs: Sequence[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "body" and self._skip == ["head"]:  # </head> may be left out
            self._skip.clear()
        if self._skip or tag in _SKIP:
            if tag in _SKIP:
                self._skip.append(tag)
            return
        if tag == "br":
            (self._heading[1] if self._heading else self._buffer).append(
                " " if self._heading else "\n"
            )
        elif tag in _HEADINGS:
            self._flush()
            self._heading = (_HEADINGS[tag], [])
        elif tag in ("td", "th") and self._cells is not None:
            self._cell()
        elif tag in _BLOCKS:
            self._flush()
            if tag == "tr":
                self._cells = []
            elif tag in ("dt", "summary"):
                self._prefix = "Q: "
            elif tag == "dd":
                self._prefix = "A: "
            elif tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag in _HEADINGS and self._heading is not None:
            level, parts = self._heading
            self._heading = None
            if title := " ".join("".join(parts).split()):
                self.has_h1 = self.has_h1 or level == 1
                self.events.append((level, title, "soft"))
        elif tag in ("td", "th") and self._cells is not None:
            self._cell()
        elif tag == "tr" and self._cells is not None:
            self._cell()
            cells, self._cells = self._cells, None
            self.events.append((0, " | ".join(cell for cell in cells if cell), "hard"))
        elif tag in _BLOCKS:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            elif tag == "summary":
                self._answer_next = True
            elif tag in ("details", "dl"):
                self._answer_next = False
                self.events.append((0, "", "end"))
            elif tag == "table":
                self.events.append((0, "", "soft"))

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif self._skip:
            return
        elif self._heading is not None:
            self._heading[1].append(data)
        else:
            self._buffer.append(data if self._pre else re.sub(r"\s+", " ", data))

    def close(self) -> None:
        super().close()
        self._cells = None
        self._flush()

    def _cell(self) -> None:
        assert self._cells is not None
        self._cells.append(" ".join("".join(self._buffer).split()))
        self._buffer = []

    def _flush(self) -> None:
        """The text read since the last block boundary as one paragraph."""
        if self._cells is not None:  # text between cells stays for the next cell
            return
        lines = "".join(self._buffer).split("\n")
        self._buffer = []
        lines = [line.rstrip() if self._pre else line.strip() for line in lines]
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            return
        prefix = self._prefix or ("A: " if self._answer_next else "")
        self._prefix, self._answer_next = "", False
        lines[0] = prefix + lines[0].strip()
        kind: LineKind = "code" if self._pre else "hard" if len(lines) > 1 else "soft"
        if kind == "code" and prefix:  # a Q&A marker must stay readable
            self.events.append((0, lines.pop(0), "hard"))
        self.events.extend((0, line, kind) for line in lines)
        self.events.append((0, "", "soft"))


def _html_sections(text: str) -> list[Section]:
    parser = _Html()
    parser.feed(text)
    parser.close()
    builder = SectionBuilder()
    title = " ".join(parser.title.split())
    if title and not parser.has_h1:
        builder.heading(1, title)
    for level, text, kind in parser.events:
        if level:
            builder.heading(level, text)
        else:
            builder.line(text, kind)
    return builder.finish()


# --- PDF ----------------------------------------------------------------------------------


def _pdf_page(text: str) -> str:
    """A page's text with paragraph breaks, which plain extraction does not mark: a line much
    shorter than the page's longest ends its paragraph, and after a sentence's end it starts
    one too (a heading: split_plain decides)."""
    lines = [line.strip() for line in text.split("\n")]
    width = max(map(len, lines), default=0)
    out = ""
    for line in lines:
        short = len(line) < 0.6 * width
        out += ("\n" if short and out.rstrip()[-1:] in ".!?:" else "") + line
        out += "\n\n" if short else "\n"
    return out


def _pdf_text(name: str, data: bytes) -> str:
    """The text layer, a page break being a paragraph break. pypdf raises all kinds of
    exceptions on damaged files (its own, but also ValueError, KeyError, struct errors…), so
    anything it raises becomes a DocumentError: an upload must never surface a traceback."""
    from pypdf import PdfReader  # only for a PDF: the daemon does not pay its import otherwise

    failure = "not a readable PDF"
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            failure = "an encrypted PDF that cannot be opened"
            if not reader.decrypt(""):
                raise DocumentError(name, "password-protected PDF: remove the password first")
            failure = "not a readable PDF"
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(name, f"{failure} ({describe(exc)})") from exc
    if not any(page.strip() for page in pages):
        raise DocumentError(name, "no text layer (scanned PDF?)")
    return "\n\n".join(_pdf_page(page) for page in pages if page.strip())


# --- Q&A files ----------------------------------------------------------------------------

_QUESTION_KEYS = ("question", "q", "вопрос")
_ANSWER_KEYS = ("answer", "a", "ответ")
_HEADING_KEYS = ("heading", "category", "topic", "section", "раздел", "тема", "категория")


def _field(item: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The first of `keys` (any case) holding a string or number, stripped ("" when none)."""
    lowered = {str(key).strip().lower(): value for key, value in item.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value).strip()
    return ""


def _pair(name: str, where: str, question: str, answer: str, heading: str = "") -> Section:
    if not question:
        raise DocumentError(name, f"{where}: no question")
    if not answer:
        raise DocumentError(name, f"{where}: no answer")
    return Section(heading, answer, "qa", question)


def _json_pairs(name: str, text: str) -> list[Section]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, or nested too deep
        raise DocumentError(name, f"invalid JSON: {describe(exc, 120)}") from None
    if isinstance(data, dict):
        data = next((data[key] for key in ("items", "qa") if key in data), None)
    if not isinstance(data, list):
        raise DocumentError(name, 'expected a list of {"question", "answer"} objects')
    sections = []
    for number, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise DocumentError(name, f"item {number}: not an object with question and answer")
        question, answer = _field(item, _QUESTION_KEYS), _field(item, _ANSWER_KEYS)
        heading = _field(item, _HEADING_KEYS)
        sections.append(_pair(name, f"item {number}", question, answer, heading))
    return sections


def _column(header: Sequence[str], keys: Iterable[str]) -> int | None:
    names = [cell.strip().lower() for cell in header]
    return next((names.index(key) for key in keys if key in names), None)


def _csv_pairs(name: str, text: str) -> list[Section]:
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows: list[tuple[int, list[str]]] = []
    try:
        for number, row in enumerate(csv.reader(io.StringIO(text), dialect), 1):
            if any(cell.strip() for cell in row):
                rows.append((number, row))
    except csv.Error as exc:
        raise DocumentError(name, f"row {len(rows) + 1}: {exc}") from None
    if not rows:
        return []
    question_at = _column(rows[0][1], _QUESTION_KEYS)
    answer_at = _column(rows[0][1], _ANSWER_KEYS)
    heading_at = _column(rows[0][1], _HEADING_KEYS)
    headerless = question_at is None and answer_at is None
    if not headerless:
        if question_at is None or answer_at is None:
            missing = "question" if question_at is None else "answer"
            raise DocumentError(name, f"row 1: the header has no {missing} column")
        rows = rows[1:]
    else:
        question_at, answer_at, heading_at = 0, 1, None
    sections = []
    for number, row in rows:
        cells = [cell.strip() for cell in row]
        if headerless and len([cell for cell in cells if cell]) > 2:
            raise DocumentError(name, f"row {number}: expected 2 columns (question, answer)")
        question = cells[question_at] if question_at < len(cells) else ""
        answer = cells[answer_at] if answer_at < len(cells) else ""
        heading = cells[heading_at] if heading_at is not None and heading_at < len(cells) else ""
        sections.append(_pair(name, f"row {number}", question, answer, heading))
    return sections


def _qa_sections(name: str, text: str, content_type: str | None = None) -> list[Section]:
    extension = PurePosixPath(name).suffix.lower()
    mime = (content_type or "").split(";")[0].strip().lower()
    if extension == ".json" or (extension != ".csv" and mime == "application/json"):
        return _json_pairs(name, text)
    if extension == ".csv" or mime == "text/csv":
        return _csv_pairs(name, text)
    starts_json = text.lstrip("\ufeff \t\n").startswith(("[", "{"))
    return _json_pairs(name, text) if starts_json else _csv_pairs(name, text)


# --- entry points -------------------------------------------------------------------------


def _parsed(name: str, kind: DocumentKind, sections: Iterable[Section]) -> ParsedDocument:
    kept = tuple(section for section in sections if section.text.strip())
    if not kept:
        raise DocumentError(name, "no text")
    return ParsedDocument(name, kind, kept)


def parse_text(name: str, text: str, kind: DocumentKind = "markdown") -> ParsedDocument:
    """A document sent as text (the API's JSON {name, text}); a PDF cannot be."""
    text = _clean(text).lstrip("\ufeff")
    if kind == "pdf":
        raise DocumentError(name, "a PDF must be uploaded as a file, not as text")
    if kind == "qa":
        return _parsed(name, kind, _qa_sections(name, text))
    if kind == "html":
        return _parsed(name, kind, _html_sections(text))
    return _parsed(name, kind, split_plain(text) if kind == "text" else split_markdown(text))


def parse_document(name: str, data: bytes, content_type: str | None = None) -> ParsedDocument:
    """An uploaded file's sections; DocumentError ("<name>: <reason>") when it cannot be read."""
    kind = kind_of(name, data, content_type)
    if kind == "pdf":
        return _parsed(name, kind, split_plain(_pdf_text(name, data)))
    charset = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE)
    text = _decode(name, data, charset[1] if charset else None)
    if kind == "qa":
        return _parsed(name, kind, _qa_sections(name, text, content_type))
    return parse_text(name, text, kind)
