"""Schemathesis checks and hooks for tests/e2e/test_schemathesis.py; the CLI loads this module
through SCHEMATHESIS_HOOKS.

* `error_shape`: every 4xx/5xx answer is exactly the one error shape, with the request id of
  the X-Request-ID header.
* `valid_input_accepted`: schemathesis' `positive_data_acceptance`, made exact. A 422 to a
  request the schema allows is a defect only if the API's own boundary validation refused it
  (schema and validator disagree). Refusals that no JSON Schema can express are the endpoint's
  business: a wrong login code, an unknown chat, settings whose minimum exceeds their maximum.
  So the sent request is validated again with the endpoint's models through the same functions
  the server uses (`twin.api.validation`); if they accept it, the 422 came from further in.
* `before_call`: a valid account name other than "default" is replaced by "default", the one
  account logged in to the sandbox (another valid name would start a login per name: slow, and
  not what is tested); invalid names are kept, so their rejection is still tested.
"""

from __future__ import annotations

import json
import re
from typing import Any

import schemathesis
from jsonschema import Draft202012Validator
from multidict import MultiDict
from yarl import URL

from twin.api.errors import ApiError
from twin.api.routes import ROUTE_TABLES
from twin.api.validation import parse_body, parse_parameters, parse_query

ACCOUNT = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ENDPOINTS = {endpoint.name: endpoint for table in ROUTE_TABLES for endpoint in table}
# Answers positive_data_acceptance allows to a schema-valid request (it allows 5xx too; those
# are not_a_server_error's failures).
ACCEPTABLE = {401, 403, 404, 409, 429}


@schemathesis.check
def error_shape(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> bool | None:
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"error answered as {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert isinstance(error, dict), body
    assert set(error) == {"type", "message", "details", "request_id"}, error
    assert isinstance(error["type"], str) and isinstance(error["message"], str), error
    assert error["message"], error
    assert isinstance(error["details"], list), error
    for detail in error["details"]:
        assert isinstance(detail, dict) and set(detail) == {"field", "error"}, detail
    request_id = (response.headers.get("x-request-id") or [None])[0]
    assert error["request_id"] == request_id, (error, request_id)
    return None


@schemathesis.check
def valid_input_accepted(
    ctx: Any, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    meta = case.meta
    status = response.status_code
    if meta is None or not meta.generation.mode.is_positive or status < 400 or status >= 500:
        return None
    if not _path_is_schema_valid(case):
        return None  # a stateful link fed it a value (a null reply_id) the schema does not allow
    assert status in ACCEPTABLE | {422}, f"a schema-valid request was answered {status}"
    if status == 422:
        endpoint = ENDPOINTS[case.operation.definition.raw["operationId"]]
        refusal = _boundary_refusal(endpoint, response)
        assert refusal is None, f"the validator refused a schema-valid request: {refusal}"
    return None


def _path_is_schema_valid(case: schemathesis.Case) -> bool:
    """Whether the path parameters actually sent match their schemas: values a stateful link
    takes from a response (e.g. `reply_id: null` of a message never answered) are not
    generated from the schema, so the case may be "positive" without being valid."""
    values = case.path_parameters or {}
    for parameter in case.operation.definition.raw.get("parameters", []):
        if parameter.get("in") == "path" and parameter["name"] in values:
            schema = parameter.get("schema", {})
            if not Draft202012Validator(schema).is_valid(values[parameter["name"]]):
                return False
    return True


def _boundary_refusal(endpoint: Any, response: schemathesis.Response) -> str | None:
    request = response.request
    url = URL(str(request.url), encoded=True)
    body = request.body
    raw = body.encode() if isinstance(body, str) else (body or b"")
    try:
        for source, model in endpoint.inputs.items():
            if source == "path":
                parse_parameters(model, _path_values(endpoint.path, url.path), root="path")
            elif source == "query":
                parse_query(model, MultiDict(url.query))
            else:
                parse_body(model, raw)
    except ApiError as exc:
        return f"{exc.status} {exc.message} {exc.details}"
    return None


def _path_values(template: str, path: str) -> dict[str, str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    match = re.fullmatch(pattern, path)
    assert match is not None, (template, path)
    return match.groupdict()


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    for container in (case.query, case.body):
        if isinstance(container, dict):
            name = container.get("account")
            if isinstance(name, str) and name != "default" and ACCOUNT.fullmatch(name):
                container["account"] = "default"
