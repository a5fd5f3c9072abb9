"""/openapi.json is generated, valid OpenAPI 3.1; /docs works offline with local assets only."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import AUTH
from twin.api.routes import STATIC_DIR
from twin.api.views.docs import CONTENT_SECURITY_POLICY, REDOC_CONTENT_SECURITY_POLICY


async def fetch_document(client) -> dict:
    response = await client.get("/openapi.json", headers=AUTH)
    assert response.status == 200
    return await response.json()


async def test_openapi_document_is_valid_openapi_3_1(client) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    document = await fetch_document(client)
    assert document["openapi"].startswith("3.1")
    validator.validate(document)  # raises on any violation of the 3.1 schema


async def test_openapi_document_is_generated_from_the_route_table(client) -> None:
    document = await fetch_document(client)
    paths = document["paths"]
    from twin.api.routes import ROUTE_TABLES

    # Generated from the route table: every declared endpoint is documented, nothing else.
    assert set(paths) == {endpoint.path for table in ROUTE_TABLES for endpoint in table}
    assert {"/health", "/metrics", "/openapi.json", "/docs", "/echo"} <= set(paths)
    operation_ids = [op["operationId"] for path in paths.values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))  # HEAD twins are not documented

    echo = paths["/echo"]["post"]
    body_ref = echo["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.startswith("#/components/schemas/")
    schemas = document["components"]["schemas"]
    echo_in = schemas[body_ref.rsplit("/", 1)[-1]]
    assert echo_in["additionalProperties"] is False
    assert echo_in["required"] == ["message"]
    assert set(echo_in["properties"]) == {"message", "tags", "priority", "options"}
    assert echo_in["properties"]["message"]["maxLength"] == 4096
    nested = echo_in["properties"]["options"]["$ref"].rsplit("/", 1)[-1]
    assert schemas[nested]["properties"]["repeat"]["maximum"] == 10
    for status in ("200", "400", "401", "413", "415", "422", "default"):
        assert status in echo["responses"], status
    error_ref = echo["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref == "#/components/schemas/ErrorResponse"

    # Every $ref points at a schema that exists.
    refs = set(
        re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', str(document).replace("'", '"'))
    )
    assert refs and refs <= set(schemas)


async def test_openapi_document_marks_public_and_protected_operations(client) -> None:
    document = await fetch_document(client)
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert document["components"]["securitySchemes"]["apiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    assert document["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    assert document["paths"]["/docs"]["get"]["security"] == []
    # Each protected operation requires either header with the scope it needs.
    echo = document["paths"]["/echo"]["post"]
    assert echo["security"] == [{"bearerAuth": ["admin"]}, {"apiKeyAuth": ["admin"]}]
    assert echo["x-required-scope"] == "admin" and echo["x-bound-keys"] is True
    chat = document["paths"]["/api/chat"]["post"]
    assert chat["security"] == [{"bearerAuth": ["chat"]}, {"apiKeyAuth": ["chat"]}]
    assert "403" in chat["responses"]
    keys_list = document["paths"]["/keys"]["get"]
    assert keys_list["x-bound-keys"] is False
    assert "bound to an account" in keys_list["responses"]["403"]["description"]
    assert "503" in document["paths"]["/health"]["get"]["responses"]


async def test_openapi_document_needs_the_token(client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 401


async def test_docs_page_uses_only_local_assets(client) -> None:
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    html = await response.text()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY

    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.split("?")[0] for a in assets} == {
        "/docs/static/favicon-32x32.png",
        "/docs/static/swagger-ui.css",
        "/docs/static/twin-docs.css",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/twin-docs.js",
    }
    for asset in assets:  # served, without a token, byte for byte
        served = await client.get(asset.replace("&amp;", "&"))
        assert served.status == 200, asset
        name = asset.split("?")[0].rsplit("/", 1)[-1]
        assert await served.read() == (STATIC_DIR / name).read_bytes()


async def test_redoc_page_uses_only_local_assets(client) -> None:
    response = await client.get("/redoc")
    assert response.status == 200 and response.content_type == "text/html"
    html = await response.text()
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE)
    assert response.headers["Content-Security-Policy"] == REDOC_CONTENT_SECURITY_POLICY
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.split("?")[0] for a in assets} == {
        "/docs/static/favicon-32x32.png",
        "/docs/static/twin-docs.css",
        "/docs/static/redoc.standalone.js",
        "/docs/static/twin-docs.js",
    }
    for asset in assets:
        served = await client.get(asset.replace("&amp;", "&"))
        assert served.status == 200, asset
    assert 'data-renderer="redoc"' in html  # twin-docs.js starts ReDoc instead of Swagger UI
    assert "MIT" in (STATIC_DIR / "LICENSE.redoc").read_text()


def test_swagger_ui_never_calls_the_public_validator() -> None:
    script = (STATIC_DIR / "twin-docs.js").read_text()
    assert "validatorUrl: null" in script
    assert "sessionStorage" in script and "localStorage" not in script


def test_vendored_assets_keep_their_licence() -> None:
    for name in ("LICENSE.swagger-ui", "NOTICE.swagger-ui", "swagger-ui-bundle.js.LICENSE.txt"):
        assert (STATIC_DIR / name).is_file()
    assert "Apache License" in (STATIC_DIR / "LICENSE.swagger-ui").read_text()


async def test_static_directory_does_not_list_or_escape(client) -> None:
    for path in ("/docs/static/", "/docs/static/../views/docs.py", "/docs/static/%2e%2e/auth.py"):
        response = await client.get(path, headers=AUTH)
        assert response.status in (403, 404), path
        assert "import" not in await response.text()
