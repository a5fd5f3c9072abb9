"""Validated endpoints: uniform 400/413/415/422 answers, typed views, no 500 on any JSON body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from tests.api.conftest import AUTH, assert_error
from twin.api.validation import ApiModel, RouteTable

LIMIT = 2048

typed = RouteTable()


class ChatPath(ApiModel):
    chat_id: int = Field(gt=0)


class Page(ApiModel):
    limit: int = Field(20, ge=1, le=100)
    tag: list[str] = Field(default_factory=list)
    before: int | None = None


class PageOut(ApiModel):
    chat_id: int
    limit: int
    tag: list[str]
    before: int | None


@typed.get("/test/chats/{chat_id}/messages", name="test_messages")
async def messages(request: web.Request, path: ChatPath, query: Page) -> PageOut:
    return PageOut(chat_id=path.chat_id, limit=query.limit, tag=query.tag, before=query.before)


@typed.post("/test/nothing", name="test_nothing")
async def nothing(request: web.Request) -> None:
    return None


@typed.get("/test/dict", name="test_dict")
async def as_dict(request: web.Request) -> PageOut:
    return {"chat_id": 1, "limit": 2, "tag": [], "before": None}  # type: ignore[return-value]


@typed.get("/test/bad_response", name="test_bad_response")
async def bad_response(request: web.Request) -> PageOut:
    return {"chat_id": "not a number"}  # type: ignore[return-value]


async def post_echo(client, body: bytes | str, content_type: str = "application/json"):
    return await client.post("/echo", data=body, headers={**AUTH, "Content-Type": content_type})


async def test_valid_body_is_echoed(client) -> None:
    response = await client.post(
        "/echo",
        json={
            "message": "hi",
            "tags": ["a"],
            "priority": 0.5,
            "options": {"uppercase": True, "repeat": 2},
        },
        headers=AUTH,
    )
    assert response.status == 200
    body = await response.json()
    assert body == {
        "message": "HI HI",
        "tags": ["a"],
        "priority": 0.5,
        "request_id": response.headers["X-Request-ID"],
    }


@pytest.mark.parametrize(
    "raw", ['{"message": "hi"', "", "not json", '{"message": NaN}', "[" * 5000, b"\xff\xfe{}"]
)
async def test_malformed_json_is_400(client, raw) -> None:
    response = await post_echo(client, raw)
    assert response.status == 400
    assert_error(await response.json(), "bad_request", response.headers["X-Request-ID"])


async def test_wrong_types_are_422_with_dotted_field_details(client) -> None:
    response = await client.post(
        "/echo",
        json={"message": 5, "tags": ["ok", 7], "priority": 3, "options": {"repeat": "many"}},
        headers=AUTH,
    )
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    fields = {detail["field"]: detail["error"] for detail in error["details"]}
    assert set(fields) == {"message", "tags.1", "priority", "options.repeat"}
    assert "string" in fields["message"]
    assert "less than or equal to 1" in fields["priority"]


async def test_missing_field_is_422(client) -> None:
    response = await client.post("/echo", json={}, headers=AUTH)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert error["details"] == [{"field": "message", "error": "Field required"}]


async def test_unknown_fields_are_rejected(client) -> None:
    response = await client.post(
        "/echo", json={"message": "hi", "mesage": "typo", "options": {"x": 1}}, headers=AUTH
    )
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert {d["field"] for d in error["details"]} == {"mesage", "options.x"}


async def test_rejected_input_is_not_echoed(client) -> None:
    secret = "hunter2-do-not-echo"
    response = await client.post("/echo", json={"message": "hi", "password": secret}, headers=AUTH)
    assert response.status == 422
    assert secret not in await response.text()


async def test_non_object_body_is_422_on_the_body(client) -> None:
    response = await post_echo(client, "[1, 2]")
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert error["details"][0]["field"] == "body"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_wrong_content_type_is_415(client, content_type: str) -> None:
    response = await post_echo(client, '{"message": "hi"}', content_type)
    assert response.status == 415
    assert_error(await response.json(), "unsupported_media_type")


async def test_json_content_type_variants_are_accepted(client) -> None:
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        response = await post_echo(client, '{"message": "hi"}', content_type)
        assert response.status == 200, content_type


async def test_oversized_body_with_content_length_is_413(make_client) -> None:
    client = await make_client(max_body_bytes=LIMIT)
    body = json.dumps({"message": "x" * LIMIT})
    response = await post_echo(client, body)
    assert response.status == 413
    error = assert_error(
        await response.json(), "payload_too_large", response.headers["X-Request-ID"]
    )
    assert str(LIMIT) in error["message"]


async def test_oversized_chunked_body_is_413(make_client) -> None:
    client = await make_client(max_body_bytes=LIMIT)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"message": "'
        for _ in range(8):
            yield b"x" * 512
        yield b'"}'

    response = await client.post(
        "/echo", data=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
    assert response.status == 413
    assert_error(await response.json(), "payload_too_large", response.headers["X-Request-ID"])


async def test_body_at_the_limit_is_accepted_one_more_byte_is_not(make_client) -> None:
    client = await make_client(max_body_bytes=LIMIT)
    body = json.dumps({"message": ""})
    body = body[:-2] + "x" * (LIMIT - len(body)) + '"}'
    assert len(body) == LIMIT
    assert (await post_echo(client, body)).status == 200
    assert (await post_echo(client, body + " ")).status == 413


async def test_path_and_query_models(make_client) -> None:
    client = await make_client(routes=typed)
    response = await client.get("/test/chats/7/messages?limit=5&tag=a&tag=b", headers=AUTH)
    assert response.status == 200
    assert await response.json() == {"chat_id": 7, "limit": 5, "tag": ["a", "b"], "before": None}

    single = await client.get("/test/chats/7/messages?tag=only", headers=AUTH)
    assert (await single.json())["tag"] == ["only"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/test/chats/0/messages", "chat_id"),
        ("/test/chats/abc/messages", "chat_id"),
        ("/test/chats/1/messages?limit=1000", "limit"),
        ("/test/chats/1/messages?limit=x", "limit"),
        ("/test/chats/1/messages?before=1&before=2", "before"),
        ("/test/chats/1/messages?unknown=1", "unknown"),
    ],
)
async def test_bad_path_or_query_is_422(make_client, url: str, field: str) -> None:
    client = await make_client(routes=typed)
    response = await client.get(url, headers=AUTH)
    assert response.status == 422
    error = assert_error(await response.json(), "validation_error")
    assert [d["field"] for d in error["details"]] == [field]


async def test_none_return_is_204(make_client) -> None:
    client = await make_client(routes=typed)
    response = await client.post("/test/nothing", headers=AUTH)
    assert response.status == 204


async def test_dict_return_is_validated_into_the_response_model(make_client) -> None:
    client = await make_client(routes=typed)
    response = await client.get("/test/dict", headers=AUTH)
    assert await response.json() == {"chat_id": 1, "limit": 2, "tag": [], "before": None}


async def test_invalid_response_is_a_500_not_a_422(make_client) -> None:
    client = await make_client(routes=typed)
    response = await client.get("/test/bad_response", headers=AUTH)
    assert response.status == 500
    assert_error(await response.json(), "internal_error")


class Loose(BaseModel):  # extra fields are not forbidden
    a: int


def test_declaration_mistakes_fail_at_import_time() -> None:
    table = RouteTable()

    class Local(ApiModel):  # not resolvable from the module: annotations are strings
        a: int

    async def local(request: web.Request, body: Local) -> None: ...

    async def loose(request: web.Request, body: Loose) -> None: ...

    async def unknown_param(request: web.Request, payload: ApiModel) -> None: ...

    async def no_return(request: web.Request): ...

    for view in (local, loose, unknown_param, no_return):
        with pytest.raises(TypeError):
            table.post("/x", name="x")(view)
    assert list(table) == []


# Any JSON value at all, nested a few levels, as the body of POST /echo.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
echo_like = st.fixed_dictionaries(
    {"message": json_values | st.text(max_size=20)},
    optional={
        "tags": json_values,
        "priority": json_values,
        "options": st.fixed_dictionaries(
            {}, optional={"uppercase": json_values, "repeat": json_values}
        )
        | json_values,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=json_values | echo_like)
async def test_random_json_bodies_never_cause_a_500(client, body) -> None:
    response = await client.post(
        "/echo", data=json.dumps(body), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status in (200, 422), await response.text()
    if response.status == 422:
        assert_error(await response.json(), "validation_error")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=st.binary(max_size=64))
async def test_random_bytes_never_cause_a_500(client, raw: bytes) -> None:
    response = await post_echo(client, raw)
    assert response.status in (200, 400, 422), await response.text()
