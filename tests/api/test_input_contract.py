"""Validation and /openapi.json are one source of truth: what the document allows is accepted,
what it does not is refused (422), in query strings and JSON bodies alike."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field

from tests.api.conftest import AUTH, assert_error
from twin.api.errors import ApiError
from twin.api.fields import CHAT_REFERENCE_PATTERN, INT64_MAX, INT64_MIN, PHONE_PATTERN, IsoDate
from twin.api.validation import ApiModel, RouteTable, parse_body
from twin.api.views.telegram import RequestCodeIn, SendMessageIn, VerifyCodeIn

typed = RouteTable()


class Filters(ApiModel):
    flag: bool = False
    ratio: float = Field(0.5, ge=0, le=1)
    count: int = Field(1, ge=0, le=100)
    day: IsoDate | None = None
    ids: list[int] = Field(default_factory=list)
    before: int | None = None


@typed.get("/test/filters", name="test_filters")
async def filters(request: web.Request, query: Filters) -> Filters:
    return query


async def get_filters(make_client, **params: str):
    client = await make_client(routes=typed)
    response = await client.get("/test/filters", params=params, headers=AUTH)
    return response.status, await response.json()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"flag": "true", "ratio": "0.25", "count": "3"}, {"flag": True, "ratio": 0.25}),
        ({"flag": "false", "ratio": "1", "count": "0"}, {"flag": False, "ratio": 1.0, "count": 0}),
        ({"count": "5.0", "ratio": "1e-1"}, {"count": 5, "ratio": 0.1}),  # 5.0 is an integer
        ({"day": "1969-12-26"}, {"day": "1969-12-26"}),
        ({"day": "0001-01-01"}, {"day": "0001-01-01"}),
        ({"ids": "-3"}, {"ids": [-3]}),
        ({"before": "7"}, {"before": 7}),
    ],
)
async def test_query_values_documented_valid_are_accepted(make_client, params, expected) -> None:
    status, body = await get_filters(make_client, **params)
    assert status == 200, body
    assert {key: body[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"flag": "1"}, "flag"),  # a boolean is true or false
        ({"flag": "yes"}, "flag"),
        ({"flag": "True"}, "flag"),
        ({"count": "1_0"}, "count"),  # Python's int() would take these; JSON would not
        ({"count": "+5"}, "count"),
        ({"count": " 5"}, "count"),
        ({"count": "5.5"}, "count"),
        ({"count": "0x10"}, "count"),
        ({"count": "٣"}, "count"),  # a digit, but not an ASCII one
        ({"count": "1" * 5000}, "count"),
        ({"ratio": "inf"}, "ratio"),
        ({"ratio": "NaN"}, "ratio"),
        ({"ratio": ".5"}, "ratio"),
        ({"day": "0"}, "day"),  # not a Unix time
        ({"day": "1700000000"}, "day"),
        ({"day": "2024-1-1"}, "day"),
        ({"day": "2024-02-30"}, "day"),
        ({"day": "2024-01-01T00:00:00"}, "day"),
        ({"ids": "a"}, "ids.0"),
        ({"before": ""}, "before"),
        ({"before": "null"}, "before"),
    ],
)
async def test_query_values_documented_invalid_are_refused(make_client, params, field) -> None:
    status, body = await get_filters(make_client, **params)
    assert status == 422, body
    error = assert_error(body, "validation_error")
    assert [detail["field"] for detail in error["details"]] == [field]


async def test_query_parameters_are_documented_without_null(client) -> None:
    from twin.api.openapi import _not_null

    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            for param in operation.get("parameters", []):
                assert "null" not in json.dumps(param["schema"]), (path, param)
    schema = {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None, "title": "X"}
    assert _not_null(schema) == {"type": "integer", "title": "X"}


# --- JSON bodies: strict JSON types ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hi", "options": {"uppercase": 0}},  # a number is not a boolean
        {"message": "hi", "options": {"uppercase": "true"}},
        {"message": "hi", "options": {"repeat": "2"}},  # text is not a number
        {"message": "hi", "options": {"repeat": True}},
        {"message": "hi", "options": {"repeat": 2.5}},
        {"message": 5},
        {"message": "hi", "tags": "a"},
        {"message": "hi", "priority": "0.5"},
    ],
)
async def test_body_values_of_another_json_type_are_refused(client, body) -> None:
    response = await client.post("/echo", json=body, headers=AUTH)
    assert response.status == 422, await response.text()
    assert_error(await response.json(), "validation_error")


async def test_integral_numbers_are_integers_and_integers_are_numbers(client) -> None:
    body = {"message": "hi", "priority": 1, "options": {"repeat": 2.0}}
    response = await client.post("/echo", json=body, headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["message"] == "hi hi"


async def test_offset_false_is_refused(client) -> None:
    response = await client.post("/get_dialogs", json={"offset": False}, headers=AUTH)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert [detail["field"] for detail in error["details"]] == ["offset"]


def body_of(model, data):
    return parse_body(model, json.dumps(data).encode())


@pytest.mark.parametrize(
    "phone", ["+15551234567", "15551234567", "+1 (555) 123-4567", "+7 999 1234567", "1234567"]
)
def test_phones_in_international_form_are_accepted(phone) -> None:
    assert body_of(RequestCodeIn, {"phone": phone}).phone == phone


@pytest.mark.parametrize(
    "phone",
    ["+0000", "00000", "+123456", "+1234567890123456", "+", "", "+1 555 () 0100-", "12a4567"],
)
def test_phones_that_are_not_7_to_15_digits_are_refused(phone) -> None:
    with pytest.raises(ApiError) as caught:
        body_of(RequestCodeIn, {"phone": phone})
    assert caught.value.status == 422 and caught.value.details[0][0] == "phone"


def test_a_login_code_is_required_text_and_a_password_optional() -> None:
    for code in (None, "", " ", "-", 12345):
        with pytest.raises(ApiError) as caught:
            body_of(VerifyCodeIn, {"phone": "+15551234567", "code": code})
        assert caught.value.details[0][0] == "code"
    ok = body_of(VerifyCodeIn, {"phone": "+15551234567", "code": "12 345", "password": None})
    assert ok.code == "12 345" and ok.password is None
    schema = VerifyCodeIn.model_json_schema()
    assert "code" in schema["required"] and schema["properties"]["code"]["type"] == "string"


@pytest.mark.parametrize(
    ("chat", "expected"),
    [
        (42, 42),
        (INT64_MAX, INT64_MAX),
        (INT64_MIN, INT64_MIN),
        (7.0, 7),
        ("-1001234567890", -1001234567890),
        ("@carl_contact", "@carl_contact"),
        ("+1 555 010 0200", "+1 555 010 0200"),
    ],
)
def test_chat_references_documented_valid(chat, expected) -> None:
    assert body_of(SendMessageIn, {"chat": chat, "text": "hi"}).chat == expected


@pytest.mark.parametrize(
    "chat",
    [
        INT64_MAX + 1,
        INT64_MIN - 1,
        "9" * 19,  # as text: at most 18 digits, always inside 64 bits
        "",
        " 42",
        "@",
        "@abc",  # usernames have 4 to 32 characters
        "@1abc",
        "+",
        "+123",
        "carl",
        True,
        None,
        4.5,
    ],
)
def test_chat_references_documented_invalid(chat) -> None:
    with pytest.raises(ApiError) as caught:
        body_of(SendMessageIn, {"chat": chat, "text": "hi"})
    assert caught.value.status == 422


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ("hi", True),
        (" hi\n", True),
        ("\u00e9t\u00e9 \U0001f600", True),
        ("", False),
        (" ", False),
        ("\f\n\t", False),  # only whitespace: Telegram refuses it (MESSAGE_EMPTY)
        ("a\x00b", False),  # PostgreSQL cannot store a NUL in text
        ("\x00", False),
        ("x" * 4097, False),
    ],
)
def test_message_texts(text, accepted) -> None:
    body = {"chat": 42, "text": text}
    if accepted:
        assert body_of(SendMessageIn, body).text == text
    else:
        with pytest.raises(ApiError) as caught:
            body_of(SendMessageIn, body)
        assert caught.value.details[0][0] == "text"


def _ecma_like(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.from_regex(PHONE_PATTERN, fullmatch=True),
        st.text(alphabet="+0123456789 ()-a", max_size=24),
    )
)
def test_the_documented_phone_pattern_is_the_validators(text) -> None:
    documented = _ecma_like(PHONE_PATTERN).search(text) is not None and len(text) <= 32
    try:
        body_of(RequestCodeIn, {"phone": text})
        accepted = True
    except ApiError:
        accepted = False
    assert accepted == documented


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.from_regex(CHAT_REFERENCE_PATTERN, fullmatch=True),
        st.text(alphabet="@+-0123456789 _abZ", max_size=24),
    )
)
def test_the_documented_chat_pattern_is_the_validators(text) -> None:
    documented = _ecma_like(CHAT_REFERENCE_PATTERN).search(text) is not None and len(text) <= 40
    try:
        body_of(SendMessageIn, {"chat": text, "text": "hi"})
        accepted = True
    except ApiError:
        accepted = False
    assert accepted == documented


# --- the document ---------------------------------------------------------------------------------


async def test_ids_are_documented_as_64_bit(client) -> None:
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    [chat_id] = doc["paths"]["/chats/{chat_id}/pause"]["post"]["parameters"]
    assert (chat_id["schema"]["minimum"], chat_id["schema"]["maximum"]) == (INT64_MIN, INT64_MAX)
    messages = {p["name"]: p["schema"] for p in doc["paths"]["/messages"]["get"]["parameters"]}
    assert messages["chat"]["maximum"] == INT64_MAX and messages["before"]["minimum"] == 1
    send = doc["components"]["schemas"]["SendMessageIn"]["properties"]["chat"]["anyOf"]
    assert {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX} in send
    assert {"type": "string", "maxLength": 40, "pattern": CHAT_REFERENCE_PATTERN}.items() <= (
        next(branch for branch in send if branch.get("type") == "string").items()
    )


async def test_bodies_that_may_be_left_out_are_documented_so(client) -> None:
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    optional = {
        (path, method)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation and not operation["requestBody"]["required"]
    }
    assert {
        ("/chats/{chat_id}/resume", "post"),
        ("/chats/{chat_id}/pause", "post"),
        ("/twin/enable", "post"),
        ("/twin/disable", "post"),
        ("/auth/logout", "post"),
        ("/settings", "put"),
        ("/get_dialogs", "post"),
    } <= optional
    assert ("/echo", "post") not in optional and ("/send_message", "post") not in optional


async def test_rate_limits_are_documented(client) -> None:
    doc = await (await client.get("/openapi.json", headers=AUTH)).json()
    chats = doc["paths"]["/chats"]["get"]["responses"]
    assert set(chats["200"]["headers"]) == {
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    }
    assert "Retry-After" in chats["429"]["headers"]
    assert "429" not in doc["paths"]["/health"]["get"]["responses"]


def test_iso_dates_are_real_dates() -> None:
    class Day(ApiModel):
        day: IsoDate

    assert parse_body(Day, b'{"day": "1969-12-26"}').day == dt.date(1969, 12, 26)
    for text in (b'{"day": "0"}', b'{"day": 0}', b'{"day": "2023-02-29"}'):
        with pytest.raises(ApiError):
            parse_body(Day, text)


# --- parameterless POSTs ------------------------------------------------------------------------


@pytest.fixture
async def db_client(make_client, tmp_path):
    from tests.api.test_control import control_settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'twin.db'}"
    return await make_client(settings=control_settings(url, tmp_path), real_database=True)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/twin/enable", 200),
        ("/twin/disable", 200),
        ("/chats/4242/resume", 404),  # past the body: the chat is unknown
        ("/chats/4242/pause", 404),
    ],
)
async def test_parameterless_posts_take_no_body(db_client, path, status) -> None:
    for kwargs in (
        {},  # no body at all
        {"data": b""},  # Content-Length: 0, no content type
        {"data": b"", "headers": {"Content-Type": "text/plain"}},
        {"json": {}},
    ):
        headers = {**AUTH, **kwargs.pop("headers", {})}
        response = await db_client.post(path, headers=headers, **kwargs)
        assert response.status == status, (kwargs, await response.text())


async def test_a_body_still_has_to_be_json(db_client) -> None:
    response = await db_client.post(
        "/twin/enable", data=b"account=default", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert_error(await response.json(), "unsupported_media_type")
    # A body with required fields cannot be left out.
    response = await db_client.post("/echo", headers=AUTH)
    assert response.status == 415
    response = await db_client.post(
        "/echo", data=b"", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 400
    assert_error(await response.json(), "bad_request")
