"""Documents → sections: every format generated here, every failure a DocumentError naming
the file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.domain.chunking import Section, chunk_sections
from twin.errors import InvalidInput
from twin.knowledge.parse import DocumentError, kind_of, parse_document, parse_text

PARAGRAPH = (
    "We are open from nine to nine every day. On public holidays we close at five, and the "
    "salon may be busy before them, so please book ahead. "
)
RUSSIAN = "Мы работаем каждый день с девяти до девяти. В праздники закрываемся в пять."
_FONTS = sorted(Path("/usr/share/fonts").rglob("DejaVuSans.ttf"))
CYRILLIC_FONT = _FONTS[0] if _FONTS else None


def fails(name: str, data: bytes, reason: str, content_type: str | None = None) -> DocumentError:
    """parse_document's error, checked to name the file and give `reason`."""
    with pytest.raises(DocumentError) as caught:
        parse_document(name, data, content_type)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.name == name
    assert str(error).startswith(f"{name}: ")
    assert reason in error.reason
    return error


# --- Markdown and text --------------------------------------------------------------------


def test_markdown_file() -> None:
    data = b"# Salon\n\n## Prices\n\nMen 500.\n\n**Q:** Cards?\n**A:** Yes.\n"
    document = parse_document("notes/salon.md", data)
    assert document.name == "notes/salon.md"
    assert document.kind == "markdown"
    assert document.sections == (
        Section("Salon > Prices", "Men 500."),
        Section("Salon > Prices", "Yes.", "qa", "Cards?"),
    )


def test_plain_text_file_with_utf8_bom_and_windows_line_ends() -> None:
    data = "\ufeffOpening hours\r\n\r\nDaily.\r\nExcept holidays.\r\n".encode()
    document = parse_document("hours.txt", data)
    assert document.kind == "text"
    assert document.sections == (Section("Opening hours", "Daily. Except holidays."),)


def test_cp1251_russian_text_is_decoded() -> None:
    document = parse_document("старый.txt", f"Часы работы\n\n{RUSSIAN}".encode("cp1251"))
    assert document.sections == (Section("Часы работы", RUSSIAN),)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-16-le"])
def test_utf16_with_a_byte_order_mark(codec: str) -> None:
    bom = {"utf-16": b"", "utf-16-be": b"\xfe\xff", "utf-16-le": b"\xff\xfe"}[codec]
    document = parse_document("wide.txt", bom + RUSSIAN.encode(codec))
    assert document.sections == (Section("", RUSSIAN),)


def test_nul_characters_are_dropped() -> None:
    document = parse_document("nul.txt", b"Hel\x00lo, wor\x00ld.")
    assert document.sections[0].text == "Hello, world."


def test_a_declared_charset_is_tried_first() -> None:
    data = RUSSIAN.encode("koi8-r")
    document = parse_document("koi.txt", data, "text/plain; charset=koi8-r")
    assert document.sections[0].text == RUSSIAN


def test_binary_junk_is_not_text() -> None:
    junk = random.Random(7).randbytes(4096)
    fails("junk.dat", junk, "not UTF-8 text")
    fails("junk.txt", b"\x01\x02\x03\x04 control codes, not text " * 20, "binary data, not text")
    fails("latin.txt", b"\x01\x02 caf\xe9 \x03\x04" * 50, "not UTF-8 text")  # cp1251 but noise
    fails("symbols.txt", b"price \xa4\xa6\xb5\xb6\xac\xa4 " * 20, "not UTF-8 text")  # not Cyrillic


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("letter.docx", b"PK\x03\x04 whatever", None),
        ("photo.PNG", b"\x89PNG\r\n", None),
        ("upload", b"\x89PNG\r\n\x1a\n", None),  # sniffed
        ("upload", b"PK\x03\x04\x14\x00", None),
        ("upload.bin2", b"anything", "image/jpeg"),
        ("sheet", b"anything", "application/vnd.openxmlformats-officedocument.spreadsheetml"),
    ],
)
def test_known_binary_formats_are_refused_by_name(
    name: str, data: bytes, content_type: str | None
) -> None:
    error = fails(name, data, "unsupported", content_type)
    assert "PDF, HTML, Markdown or plain text" in error.reason


def test_kind_by_extension_then_content_type_then_bytes() -> None:
    assert kind_of("a.MD", b"%PDF-1.4", "application/pdf") == "markdown"  # extension wins
    assert kind_of("a.htm", b"") == "html"
    assert kind_of("faq.csv", b"") == "qa"
    assert kind_of("faq.json", b"") == "qa"
    assert kind_of("a.text", b"") == "text"
    assert kind_of("upload", b"# x", "text/markdown; charset=utf-8") == "markdown"
    assert kind_of("upload", b"x", "application/json") == "qa"
    assert kind_of("upload", b"%PDF-1.7\n...", "application/octet-stream") == "pdf"
    assert kind_of("upload.dat", b"\xef\xbb\xbf  <!DOCTYPE html><html>") == "html"
    assert kind_of("upload", b"<HTML><body>x</body></HTML>") == "html"
    assert kind_of("README", b"Just words.") == "text"


def test_an_unknown_extension_is_sniffed_and_parsed() -> None:
    html = b"<!doctype html><html><body><h1>Hi</h1><p>There.</p></body></html>"
    document = parse_document("page.unknown", html)
    assert document.kind == "html"
    assert document.sections == (Section("Hi", "There."),)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.txt", b""),
        ("blank.md", b"  \n\n\t\n"),
        ("only-front-matter.md", b"---\ntitle: x\n---\n"),
        ("script.html", b"<html><head><title></title></head><script>var a = 1;</script></html>"),
        ("empty.json", b"[]"),
        ("header-only.csv", b"question,answer\n"),
    ],
)
def test_a_document_without_text_is_an_error(name: str, data: bytes) -> None:
    fails(name, data, "no text")


# --- HTML ---------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Ignored &amp; title</title>
<style>p { color: red } h2 { content: "Hidden" }</style>
<script>document.write("<p>Script text</p>");</script>
</head><body>
<noscript>Enable JavaScript</noscript><template><p>Template text</p></template>
<h1>Salon &laquo;Nord&raquo;</h1>
<div>Welcome&nbsp;to   the salon &mdash; since 1999.</div>
<h2>Prices</h2>
<h3>Haircuts</h3>
<table><tr><th>Service</th><th>Price</th></tr><tr><td>Men</td><td>500 &#8381;</td></tr></table>
<ul><li>Washing included</li><li>Address:<br>Nevsky 1<br>Floor 2</li></ul>
<h3>Colouring</h3>
<p>From 2000 &euro;.</p>
<h2>FAQ</h2>
<dl><dt>Do you take cards?</dt><dd>Yes, <b>all</b> of them.</dd></dl>
<details><summary>Is there parking?</summary><p>Behind the building.</p></details>
<p>After the questions.</p>
</body></html>"""


def test_html_structure_entities_and_skipped_elements() -> None:
    document = parse_document("site.html", HTML.encode())
    assert document.kind == "html"
    assert document.sections == (
        Section("Salon «Nord»", "Welcome to the salon — since 1999."),
        Section(
            "Salon «Nord» > Prices > Haircuts",
            "Service | Price\nMen | 500 ₽\n\nWashing included\n\nAddress:\nNevsky 1\nFloor 2",
        ),
        Section("Salon «Nord» > Prices > Colouring", "From 2000 €."),
        Section("Salon «Nord» > FAQ", "Yes, all of them.", "qa", "Do you take cards?"),
        Section("Salon «Nord» > FAQ", "Behind the building.", "qa", "Is there parking?"),
        Section("Salon «Nord» > FAQ", "After the questions."),
    )
    everything = repr(document.sections)
    for hidden in ("Script", "Template", "JavaScript", "color", "Hidden", "Ignored"):
        assert hidden not in everything


def test_html_title_heads_the_path_when_there_is_no_h1() -> None:
    html = "<title>Салон</title><body><p>Вход.</p><h2>Цены</h2><p>Дёшево.</p><pre>a\n  b</pre>"
    document = parse_document("page.htm", html.encode("cp1251"))  # no <meta charset>
    assert document.sections == (
        Section("Салон", "Вход."),
        Section("Салон > Цены", "Дёшево.\n\na\nb"),
    )


def test_html_sent_as_text_and_q_a_paragraphs() -> None:
    html = "<h2>FAQ</h2><p><b>Q:</b> Open on Sunday?</p><p><b>A:</b> Until five.</p>"
    document = parse_text("faq", html, "html")
    assert document.sections == (Section("FAQ", "Until five.", "qa", "Open on Sunday?"),)


# --- PDF ----------------------------------------------------------------------------------


def pdf_bytes(*pages: list[str], font: Path | None = None, password: str | None = None) -> bytes:
    pdf = FPDF()
    if font is not None:
        pdf.add_font("Body", fname=str(font))
    for lines in pages:
        pdf.add_page()
        pdf.set_font("Body" if font else "Helvetica", size=12)
        for line in lines:
            pdf.multi_cell(0, 6, line)
            pdf.ln(6)
    if password is not None:
        pdf.set_encryption(owner_password="owner", user_password=password)
    return bytes(pdf.output())


def test_pdf_text_layer_with_headings_and_page_breaks() -> None:
    data = pdf_bytes(["Opening hours", PARAGRAPH * 2], ["Prices", "Men 500. Women 900."])
    document = parse_document("salon.pdf", data)
    assert document.kind == "pdf"
    assert document.sections == (
        Section("Opening hours", (PARAGRAPH * 2).strip()),
        Section("Prices", "Men 500. Women 900."),
    )


@pytest.mark.skipif(CYRILLIC_FONT is None, reason="no TTF font with Cyrillic on this machine")
def test_russian_pdf() -> None:
    data = pdf_bytes(["Часы работы", " ".join([RUSSIAN] * 3)], font=CYRILLIC_FONT)
    document = parse_document("салон.pdf", data)
    assert document.sections == (Section("Часы работы", " ".join([RUSSIAN] * 3)),)


def test_a_pdf_without_text_layer_is_reported_as_a_scan() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 100, 60, style="F")
    fails("scan.pdf", bytes(pdf.output()), "no text layer (scanned PDF?)")


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_a_truncated_pdf_is_reported_not_raised(keep: float) -> None:
    data = pdf_bytes(["Opening hours", PARAGRAPH])
    fails("broken.pdf", data[: int(len(data) * keep)], "not a readable PDF")


def test_pdf_garbage_after_the_magic_is_reported() -> None:
    fails("garbage.pdf", b"%PDF-1.7\n" + random.Random(3).randbytes(2000), "not a readable PDF")


def test_a_password_protected_pdf_is_refused() -> None:
    data = pdf_bytes(["Secret", PARAGRAPH], password="user")
    fails("locked.pdf", data, "password-protected PDF")


def test_a_pdf_encrypted_only_with_an_owner_password_is_read() -> None:
    data = pdf_bytes(["Opening hours", PARAGRAPH], password="")
    assert parse_document("owner-only.pdf", data).sections[0].heading == "Opening hours"


def test_a_pdf_cannot_be_sent_as_text() -> None:
    with pytest.raises(DocumentError, match=r"^x\.pdf: "):
        parse_text("x.pdf", "%PDF-1.4", "pdf")


# --- Q&A files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        [{"question": "Cards?", "answer": "Yes."}, {"q": "Parking?", "a": "Behind."}],
        {"items": [{"Question": "Cards?", "Answer": "Yes."}, {"Q": "Parking?", "A": "Behind."}]},
        {"qa": [{"вопрос": "Cards?", "ответ": "Yes."}, {"question": "Parking?", "a": "Behind."}]},
    ],
)
def test_json_qa(payload: object) -> None:
    document = parse_document("faq.json", json.dumps(payload, ensure_ascii=False).encode())
    assert document.kind == "qa"
    assert document.sections == (
        Section("", "Yes.", "qa", "Cards?"),
        Section("", "Behind.", "qa", "Parking?"),
    )


def test_json_qa_category_and_numbers() -> None:
    payload = [{"question": "Price of a haircut?", "answer": 500, "category": "Prices"}]
    document = parse_text("faq", json.dumps(payload), "qa")
    assert document.sections == (Section("Prices", "500", "qa", "Price of a haircut?"),)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("{not json", "invalid JSON"),
        ("[" * 100_000, "invalid JSON"),
        ('{"questions": []}', "expected a list"),
        ('"text"', "expected a list"),
        ('[{"question": "Ok?", "answer": "Ok."}, "just a string"]', "item 2: not an object"),
        ('[{"question": "Ok?", "answer": "Ok."}, {"question": "No answer?"}]', "item 2: no answer"),
        ('[{"answer": "Orphan."}]', "item 1: no question"),
        ('[{"question": "Blank?", "answer": "   "}]', "item 1: no answer"),
    ],
)
def test_invalid_json_qa_names_the_file_and_item(payload: str, reason: str) -> None:
    fails("faq.json", payload.encode(), reason)


@pytest.mark.parametrize(
    "data",
    [
        'Question,Answer\nCards?,Yes.\n"Parking, is there?","Behind, left."\n',
        'id;вопрос;ответ\n1;Cards?;Yes.\n2;"Parking, is there?";"Behind, left."\n',
        "Cards?\tYes.\nParking, is there?\tBehind, left.\n",
        'Cards?,Yes.\n"Parking, is there?","Behind, left."\n',
    ],
)
def test_csv_qa_with_or_without_header(data: str) -> None:
    document = parse_document("faq.csv", data.encode())
    assert document.sections == (
        Section("", "Yes.", "qa", "Cards?"),
        Section("", "Behind, left.", "qa", "Parking, is there?"),
    )


def test_csv_qa_in_cp1251_with_a_topic_column() -> None:
    data = "Тема;Вопрос;Ответ\nЦены;Сколько стоит стрижка?;500 рублей\n".encode("cp1251")
    document = parse_document("faq.csv", data)
    assert document.sections == (Section("Цены", "500 рублей", "qa", "Сколько стоит стрижка?"),)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("question,answer\nCards?,Yes.\nParking?,\n", "row 3: no answer"),
        ("question,answer\n,Orphan answer.\n", "row 2: no question"),
        ("question,notes\nCards?,Yes.\n", "row 1: the header has no answer column"),
        ("Cards?,Yes.\nParking?,Behind.,extra\n", "row 2: expected 2 columns"),
        ("Just one column\n", "row 1: no answer"),
    ],
)
def test_invalid_csv_qa_names_the_file_and_row(data: str, reason: str) -> None:
    fails("faq.csv", data.encode(), reason)


def test_qa_sent_as_text_is_sniffed_as_json_or_csv() -> None:
    as_json = parse_text("faq", '[{"q": "Cards?", "a": "Yes."}]', "qa")
    as_csv = parse_text("faq", "question,answer\nCards?,Yes.\n", "qa")
    assert as_json.sections == as_csv.sections == (Section("", "Yes.", "qa", "Cards?"),)


# --- nothing but DocumentError escapes ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["a.txt", "a.md", "a.html", "a.json", "a.csv", "a.pdf", "upload"]),
    data=st.one_of(
        st.binary(max_size=1500),
        st.text(alphabet="<>/\"'=&;#!-*`|[]{},:QAhtmlpdr \n", max_size=400).map(str.encode),
    ),
)
def test_any_bytes_parse_or_fail_with_a_document_error(name: str, data: bytes) -> None:
    try:
        document = parse_document(name, data)
    except DocumentError as error:
        assert str(error).startswith(f"{name}: ")
    else:
        assert document.sections
        assert all(section.text.strip() for section in document.sections)


def test_damaged_pdfs_fail_only_with_document_errors() -> None:
    good = pdf_bytes(["Opening hours", PARAGRAPH * 3], ["Prices", "Men 500."])
    rnd = random.Random(11)
    outcomes = set()
    for _ in range(150):
        data = bytearray(good)
        for _ in range(rnd.randint(1, 12)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        try:
            parse_document("damaged.pdf", bytes(data))
            outcomes.add("read")
        except DocumentError as error:
            assert str(error).startswith("damaged.pdf: ")
            outcomes.add("refused")
    assert outcomes == {"read", "refused"}  # both happen: the damage is not always fatal


# --- into chunks --------------------------------------------------------------------------


def test_parsed_sections_chunk_within_budget() -> None:
    document = parse_text("guide", "# Guide\n\n" + "\n\n".join([PARAGRAPH] * 20), "markdown")
    chunks = chunk_sections(document.sections, max_tokens=96)
    assert len(chunks) > 3
    assert all(chunk.heading == "Guide" and chunk.tokens <= 96 for chunk in chunks)
    assert parse_text("plain", "Just words.", "text").kind == "text"
