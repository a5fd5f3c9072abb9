"""The OpenAPI 3.1 document, generated from the app's route table and the pydantic models.

Nothing here is written by hand per endpoint: every route whose handler was declared with
`twin.api.validation.RouteTable` is documented from its declaration (path, method, name, models,
docstring); pydantic's JSON Schema (draft 2020-12, which OpenAPI 3.1 uses) describes the models.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import TypeAdapter

from twin.api.errors import ErrorResponse
from twin.api.validation import JSON, Endpoint, accepts_empty_body, endpoint_of

REF_TEMPLATE = "#/components/schemas/{model}"
SECURITY_SCHEME = "bearerAuth"  # Authorization: Bearer <key>
API_KEY_SCHEME = "apiKeyAuth"  # X-API-Key: <key>
OPENAPI_DOCUMENT = web.AppKey("twin_openapi_document", dict)

_ERROR_KEY = "error"
_RATE_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed per window for this API token.",
    "X-RateLimit-Remaining": "Requests left in the window after this one.",
    "X-RateLimit-Reset": "Unix time (seconds) when the oldest request counted leaves the window.",
}
_RATE_LIMITED = (
    "Too many requests: over the API token's rate limit, or (login endpoints) over the login "
    "attempts of the account or of the client address. Retry-After says when to retry."
)
_BODY_ERRORS = {
    "400": "The body is not valid JSON.",
    "413": "The body is larger than api.max_body_bytes.",
    "415": "The body is not application/json.",
}


def build_openapi(app: web.Application, *, title: str, version: str, description: str) -> dict:
    endpoints: list[tuple[str, Endpoint]] = []
    for route in app.router.routes():
        endpoint = endpoint_of(route.handler)
        # aiohttp adds a HEAD twin to every GET route; document the declared method only.
        if endpoint is not None and route.method == endpoint.method and route.resource:
            endpoints.append((route.resource.canonical, endpoint))

    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = [
        (_ERROR_KEY, "serialization", TypeAdapter(ErrorResponse))
    ]
    for _, ep in endpoints:
        for source, model in ep.inputs.items():
            inputs.append(((ep.name, source), "validation", TypeAdapter(model)))
        if ep.response is not None:
            inputs.append(((ep.name, ep.status), "serialization", ep.response))
        for status, model in ep.responses.items():
            inputs.append(((ep.name, status), "serialization", TypeAdapter(model)))
    schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF_TEMPLATE)
    components = definitions.get("$defs", {})

    def schema(key: Any, mode: str) -> dict:
        return schemas[(key, mode)]

    paths: dict[str, dict[str, Any]] = {}
    for path, ep in endpoints:
        operation: dict[str, Any] = {"operationId": ep.name}
        if ep.summary:
            operation["summary"] = ep.summary
        if ep.description and ep.description != ep.summary:
            operation["description"] = ep.description
        if ep.tags:
            operation["tags"] = list(ep.tags)
        parameters = [
            param
            for source in ("path", "query")
            if source in ep.inputs
            for param in _parameters(source, schema((ep.name, source), "validation"), components)
        ]
        if parameters:
            operation["parameters"] = parameters
        if "body" in ep.inputs:
            operation["requestBody"] = {
                # A body whose fields all have defaults may be left out (it is then `{}`).
                "required": not accepts_empty_body(ep.inputs["body"]),
                "content": {JSON: {"schema": schema((ep.name, "body"), "validation")}},
            }
        elif ep.raw_body is not None:  # read by the view itself (an upload)
            operation["requestBody"] = {"required": True, "content": dict(ep.raw_body)}

        responses: dict[str, Any] = {str(ep.status): _success(ep, schema)}
        if not ep.public:  # counted against the token's rate limit
            responses[str(ep.status)]["headers"] = _rate_headers()
        for status in ep.responses:
            responses[str(status)] = {
                "description": f"{status} response",
                "content": {JSON: {"schema": schema((ep.name, status), "serialization")}},
            }
        error = {"content": {JSON: {"schema": schema(_ERROR_KEY, "serialization")}}}
        if not ep.public:
            responses["401"] = {"description": "Missing or invalid API key.", **error}
            forbidden = f"The API key's scopes do not include `{ep.scope}`"
            if not ep.bound_keys:
                forbidden += ", or the key is bound to an account"
            responses["403"] = {"description": forbidden + ".", **error}
            operation["x-required-scope"] = ep.scope
            operation["x-bound-keys"] = ep.bound_keys
            # Either header, with the scope this operation needs (`admin` keys pass anywhere).
            operation["security"] = [
                {SECURITY_SCHEME: [ep.scope]},
                {API_KEY_SCHEME: [ep.scope]},
            ]
        if "body" in ep.inputs or ep.raw_body is not None:
            for code, text in _BODY_ERRORS.items():
                responses[code] = {"description": text, **error}
        if ep.inputs:
            responses["422"] = {"description": "The request failed validation.", **error}
        if not ep.public:
            retry = {"description": "Seconds to wait.", "schema": {"type": "integer"}}
            responses["429"] = {
                "description": _RATE_LIMITED,
                "headers": {"Retry-After": retry, **_rate_headers()},
                **error,
            }
        responses["default"] = {"description": "Any other error, in the one error shape.", **error}
        operation["responses"] = responses
        if ep.public:
            operation["security"] = []
        paths.setdefault(path, {})[ep.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                SECURITY_SCHEME: {"type": "http", "scheme": "bearer"},
                API_KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{SECURITY_SCHEME: []}, {API_KEY_SCHEME: []}],
    }


def _rate_headers() -> dict[str, Any]:
    return {
        name: {"description": text, "schema": {"type": "integer"}}
        for name, text in _RATE_HEADERS.items()
    }


def _success(ep: Endpoint, schema: Any) -> dict[str, Any]:
    if ep.response is not None:
        content = {JSON: {"schema": schema((ep.name, ep.status), "serialization")}}
        return {"description": "Success.", "content": content}
    if ep.media_type:
        return {"description": "Success.", "content": {ep.media_type: {"schema": {}}}}
    return {"description": "Success, no content."}


def _parameters(source: str, ref: dict, components: dict) -> list[dict[str, Any]]:
    """Path and query models become one parameter per field."""
    model = components[ref["$ref"].rsplit("/", 1)[-1]]
    required = set(model.get("required", ()))
    params = []
    for name, field_schema in model.get("properties", {}).items():
        param = {"name": name, "in": source, "required": source == "path" or name in required}
        if "description" in field_schema:
            param["description"] = field_schema["description"]
        params.append({**param, "schema": _not_null(field_schema)})
    return params


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without its `null` branch: text in a URL cannot be null, and an
    optional parameter is simply left out (`before: int | None = None` is an optional integer)."""
    branches = schema.get("anyOf")
    if not branches or {"type": "null"} not in branches:
        return schema
    rest = [branch for branch in branches if branch != {"type": "null"}]
    outer = {key: value for key, value in schema.items() if key != "anyOf"}
    if outer.get("default", ...) is None:
        del outer["default"]
    return {**outer, **rest[0]} if len(rest) == 1 else {**outer, "anyOf": rest}
