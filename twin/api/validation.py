"""Declarative, validated endpoints: pydantic models in, pydantic models out.

    routes = RouteTable(tags=("messages",))

    @routes.post("/send_message", name="send_message", summary="Send a text message")
    async def send_message(request: web.Request, body: SendMessageIn) -> SendMessageOut:
        ...

A view takes the request plus any of `body` (JSON body), `query` (query string) and `path` (URL
placeholders), each annotated with an `ApiModel`. Their parsing and validation errors are uniform
(400 malformed JSON, 413, 415, 422 with field details).

The models are the one source of truth: /openapi.json is their JSON Schema, and input is
validated against them strictly, i.e. exactly as documented. A JSON body is validated in
pydantic's strict mode (`false` is not an integer, `"5"` is not a number). Path and query values
are text: each is read as the JSON type its field documents (`integer`: an optional minus and
ASCII digits; `number`: a JSON number; `boolean`: `true` or `false`; anything else stays text)
and then validated strictly too, so `?limit=1_0` or `?to=0` is refused rather than guessed at.
A model whose fields all have defaults also accepts an empty body (no body, or Content-Length 0)
as `{}`, so parameterless POSTs need none. The return annotation is the response
schema: a model (or `list[Model]` …) dumped as JSON, `None` for 204, or a `web.StreamResponse` for
anything else; `Model | web.Response` documents the model and lets the view `respond()` with
another status. `twin.api.openapi` builds the OpenAPI document from these same declarations.
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache, partialmethod
from typing import Any

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import from_json

from twin.api.errors import ApiError, validation_error
from twin.errors import NotFound
from twin.services.keys import Principal

JSON = "application/json"
ENDPOINT_ATTR = "__twin_endpoint__"
INPUTS = ("path", "query", "body")
# The request's parsed inputs ("path" / "query" / "body" -> model): the access log names the
# account, chat and reply a request was about from them.
PARSED_INPUTS: web.RequestKey[dict[str, BaseModel]] = web.RequestKey("twin_inputs", dict)

View = Callable[..., Awaitable[Any]]


class ApiModel(BaseModel):
    """Base of request and response models: unknown fields are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One declared endpoint; `handler` is what the aiohttp router calls."""

    method: str
    path: str
    name: str
    view: View
    inputs: Mapping[str, type[BaseModel]]  # "path" / "query" / "body" -> model
    response: TypeAdapter[Any] | None  # None: no JSON body (204, or a raw StreamResponse)
    status: int
    public: bool = False
    scope: str = "admin"  # what a key needs to call it (admin keys may call everything)
    bound_keys: bool = True  # False: a key bound to an account gets 403 (see bind_to_account)
    summary: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    media_type: str | None = None  # documented media type of a raw response
    responses: Mapping[int, Any] = field(default_factory=dict)  # other statuses -> model
    # a body the view reads itself (an upload): its documented content, media type -> schema
    raw_body: Mapping[str, Any] | None = None
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]] = field(init=False)

    def __post_init__(self) -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self.handle(request)

        handler.__name__ = handler.__qualname__ = self.name
        setattr(handler, ENDPOINT_ATTR, self)
        object.__setattr__(self, "handler", handler)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        kwargs: dict[str, Any] = {}
        request[PARSED_INPUTS] = kwargs
        for source, model in self.inputs.items():
            if source == "body":
                kwargs[source] = await _parse_body(request, model)
            elif source == "path":
                kwargs[source] = parse_parameters(model, request.match_info, root="path")
            else:
                kwargs[source] = parse_query(model, request.query)
        bind_to_account(request, self, kwargs)
        result = await self.view(request, **kwargs)
        if isinstance(result, web.StreamResponse):
            return result
        if self.response is None:
            if result is not None:
                raise TypeError(f"view {self.name!r} returned {type(result).__name__}, not None")
            return web.Response(status=self.status)
        value = self.response.validate_python(result, from_attributes=True)
        return _json(self.response.dump_json(value, by_alias=True), self.status)


# Who is calling (set by twin.api.auth on every authenticated request).
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("twin_principal", Principal)


def bind_to_account(
    request: web.Request, endpoint: Endpoint, inputs: dict[str, BaseModel]
) -> None:
    """The one place where a key bound to an account meets the accounts a request addresses.

    Such a key sees nothing of another account: any account the request names (an `account`
    field of its path, query or body, or the `{name}` of /accounts/{name}) must be its own,
    else 404, as if the account did not exist; an `account` field left out means its own
    account (not `default`), so listings (GET /chats, GET /events …) hold only its objects.
    (Endpoints declared `bound_keys=False` refuse such a key with 403 before this, in
    twin.api.auth.) Unbound keys and configured tokens pass unchanged."""
    principal = request.get(PRINCIPAL)
    if principal is None or principal.account is None:
        return
    for source, model in list(inputs.items()):
        if source == "path" and endpoint.path.startswith("/accounts/{name}"):
            named = getattr(model, "name", None)
        elif "account" in type(model).model_fields:
            if "account" not in model.model_fields_set:
                inputs[source] = model.model_copy(update={"account": principal.account})
                continue
            named = getattr(model, "account", None)
        else:
            continue
        if isinstance(named, str) and named != principal.account:
            raise NotFound(f"account '{named}' does not exist")


def endpoint_of(handler: Any) -> Endpoint | None:
    """The declaration behind an aiohttp route handler, if it was declared here."""
    return getattr(handler, ENDPOINT_ATTR, None)


def respond(
    model: BaseModel, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON response with a status other than the endpoint's default."""
    response = _json(model.model_dump_json(by_alias=True).encode(), status)
    response.headers.update(headers or {})
    return response


class RouteTable:
    """The endpoints of one feature; `twin.api.routes` adds every table to the app."""

    def __init__(self, *, tags: tuple[str, ...] = ()) -> None:
        self.tags = tags
        self._endpoints: list[Endpoint] = []

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._endpoints)

    def route(
        self,
        method: str,
        path: str,
        *,
        name: str,
        summary: str = "",
        public: bool = False,
        scope: str = "admin",
        bound_keys: bool = True,
        status: int | None = None,
        media_type: str | None = None,
        responses: Mapping[int, Any] | None = None,
        tags: tuple[str, ...] | None = None,
        raw_body: Mapping[str, Any] | None = None,
    ) -> Callable[[View], View]:
        """Declare `view` (returned unchanged, so it stays callable in tests)."""

        def register(view: View) -> View:
            inputs, response, no_body = _signature(view)
            doc = inspect.getdoc(view) or ""
            self._endpoints.append(
                Endpoint(
                    method=method.upper(),
                    path=path,
                    name=name,
                    view=view,
                    inputs=inputs,
                    response=response,
                    status=status or (204 if no_body else 200),
                    public=public,
                    scope=scope,
                    bound_keys=bound_keys,
                    summary=summary or doc.split("\n", 1)[0],
                    description=doc,
                    tags=self.tags if tags is None else tags,
                    media_type=media_type,
                    responses=dict(responses or {}),
                    raw_body=raw_body,
                )
            )
            return view

        return register

    get = partialmethod(route, "GET")
    post = partialmethod(route, "POST")
    put = partialmethod(route, "PUT")
    patch = partialmethod(route, "PATCH")
    delete = partialmethod(route, "DELETE")


def _signature(view: View) -> tuple[dict[str, type[BaseModel]], TypeAdapter[Any] | None, bool]:
    """Read the view's signature once, at import: a mistake fails at start, not per request."""
    try:
        hints = typing.get_type_hints(view)
    except NameError as exc:
        raise TypeError(f"{view.__qualname__}: cannot resolve its annotations: {exc}") from exc
    inputs: dict[str, type[BaseModel]] = {}
    for param in list(inspect.signature(view).parameters)[1:]:
        model = hints.get(param)
        if param not in INPUTS or not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise TypeError(f"{view.__qualname__}: '{param}' must be one of {INPUTS}: <ApiModel>")
        if model.model_config.get("extra") != "forbid":
            raise TypeError(f"{view.__qualname__}: {model.__name__} must forbid extra fields")
        inputs[param] = model
    if "return" not in hints:
        raise TypeError(f"{view.__qualname__}: annotate the return type (the response schema)")
    returned = _json_part(hints["return"])
    ordered = {source: inputs[source] for source in INPUTS if source in inputs}
    no_body = hints["return"] in (None, type(None))
    return ordered, None if returned is None else TypeAdapter(returned), no_body


def _json_part(annotation: Any) -> Any:
    """The JSON-serialisable part of a return annotation (`Model | web.Response` -> Model)."""
    if annotation in (None, type(None)):
        return None
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(annotation) if not _is_response(arg)]
        if not rest:
            return None
        return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
    return None if _is_response(annotation) else annotation


def _is_response(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, web.StreamResponse)


def _is_many(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_many(arg) for arg in typing.get_args(annotation))
    return origin in (list, set, frozenset, tuple)


def parse_query(model: type[BaseModel], query: MultiMapping[str]) -> BaseModel:
    """A query string as `model`; repeated keys become lists, and a list field always gets a
    list (`?tag=a` -> ["a"])."""
    many = {f.alias or n for n, f in model.model_fields.items() if _is_many(f.annotation)}
    raw = {
        key: query.getall(key) if key in many or len(query.getall(key)) > 1 else query[key]
        for key in dict.fromkeys(query.keys())
    }
    return parse_parameters(model, raw, root="query")


def parse_parameters(
    model: type[BaseModel], raw: Mapping[str, str | list[str]], *, root: str
) -> BaseModel:
    """Path or query values (text) as `model`: each read as the JSON type its field documents,
    then validated strictly; 422 naming the fields otherwise."""
    kinds = _parameter_kinds(model)
    data = {key: _as_documented(value, kinds.get(key, frozenset())) for key, value in raw.items()}
    try:
        return model.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        raise validation_error(exc, root=root) from None


def parse_body(model: type[BaseModel], raw: bytes) -> BaseModel:
    """A JSON body as `model`, strictly (JSON types are not converted); 400 if it is not JSON,
    422 naming the fields if it does not match."""
    if not raw and _all_optional(model):
        raw = b"{}"
    try:  # strict JSON: NaN and Infinity are not JSON, whatever Python's json module thinks
        data = from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}.") from None
    if _has_integral_float(data):  # 5.0 is an integer to JSON Schema, as to any JSON reader
        raw = json.dumps(_integral_floats_as_ints(data)).encode()
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise validation_error(exc, root="body") from None


def accepts_empty_body(model: type[BaseModel]) -> bool:
    """Whether `model` may be sent as no body at all (every field has a default)."""
    return _all_optional(model)


# Longer digit strings stay text (Python refuses to convert them, and no field takes them).
_INTEGER = re.compile(r"-?[0-9]{1,4000}", re.ASCII)
_NUMBER = re.compile(
    r"-?(?:0|[1-9][0-9]{0,400})(?:\.[0-9]{1,400})?(?:[eE][+-]?[0-9]{1,4})?", re.ASCII
)
_BOOLEANS = {"true": True, "false": False}


def _as_documented(value: str | list[str], kinds: frozenset[str]) -> Any:
    if isinstance(value, list):
        return [_as_documented(item, _item_kinds(kinds)) for item in value]
    if "integer" in kinds and _INTEGER.fullmatch(value):
        return int(value)
    if kinds & {"integer", "number"} and _NUMBER.fullmatch(value):
        return _integral_floats_as_ints(json.loads(value))  # "5.0" is an integer too
    if "boolean" in kinds and value in _BOOLEANS:
        return _BOOLEANS[value]
    return value  # text; a field that is not text refuses it


def _has_integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_has_integral_float(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_integral_float(item) for item in value)
    return False


def _integral_floats_as_ints(value: Any) -> Any:
    """JSON does not tell 5 from 5.0 and JSON Schema's `integer` accepts both; pydantic's strict
    mode only the first. Every integral number becomes an int (a `number` field takes ints)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    return value


def _item_kinds(kinds: frozenset[str]) -> frozenset[str]:
    return frozenset(kind.removeprefix("array:") for kind in kinds if kind.startswith("array:"))


@cache
def _parameter_kinds(model: type[BaseModel]) -> dict[str, frozenset[str]]:
    """Per field (by alias), the JSON types its schema documents: "integer", "array:string" …"""
    schema = model.model_json_schema(mode="validation")
    return {
        name: frozenset(_json_types(prop, schema.get("$defs", {})))
        for name, prop in schema.get("properties", {}).items()
    }


def _json_types(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> Iterator[str]:
    if "$ref" in schema:
        yield from _json_types(defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), defs)
    for branch in (*schema.get("anyOf", ()), *schema.get("oneOf", ()), *schema.get("allOf", ())):
        yield from _json_types(branch, defs)
    kind = schema.get("type")
    for name in kind if isinstance(kind, list) else [kind] if kind else []:
        if name == "array":
            yield from (f"array:{item}" for item in _json_types(schema.get("items", {}), defs))
        else:
            yield name


def _all_optional(model: type[BaseModel]) -> bool:
    return not any(info.is_required() for info in model.model_fields.values())


async def _parse_body(request: web.Request, model: type[BaseModel]) -> BaseModel:
    if _all_optional(model) and (request.content_length == 0 or not request.body_exists):
        return parse_body(model, b"")  # no body at all: every field has its default
    ctype = request.content_type
    if ctype != JSON and not (ctype.startswith("application/") and ctype.endswith("+json")):
        raise ApiError(415, f"The request body must be JSON (Content-Type: {JSON}).")
    if request.content_length is not None and request.content_length > request.client_max_size:
        # Refuse before reading; a chunked body is cut off by request.read() itself.
        raise web.HTTPRequestEntityTooLarge(request.client_max_size, request.content_length)
    return parse_body(model, await request.read())


def _json(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type=JSON, charset="utf-8")
