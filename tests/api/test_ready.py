"""GET /ready: public, 200 only when the database answers (and every logged-in account is
connected: tests/faults/test_outage.py), each component with its last success and failure."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.conftest import AUTH, FakeDatabase, api_settings
from twin import __version__, keys
from twin.app import Adapters, create_app
from twin.clock import ManualClock
from twin.services.health import Health


async def test_ready_when_the_database_answers(make_client) -> None:
    client = await make_client(database=FakeDatabase())
    response = await client.get("/ready")  # no token
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ready" and body["version"] == __version__
    database = body["database"]
    assert (database["name"], database["status"], database["required"]) == ("database", "ok", True)
    assert database["last_success_at"] is not None and database["error"] is None
    assert body["telegram"] == [] and body["dependencies"] == []


async def test_not_ready_while_the_database_is_down_with_when_and_why(make_client) -> None:
    database = FakeDatabase(error=OSError("connection refused by db.internal:5432 as admin"))
    client = await make_client(database=database)
    response = await client.get("/ready")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "not_ready"
    assert body["database"]["status"] == "down"
    assert body["database"]["last_error_at"] is not None
    assert body["database"]["error"] == "OSError"  # never the driver's text (hosts, users)
    database.error = None
    assert (await client.get("/ready")).status == 200


async def test_dependencies_are_listed_but_do_not_decide_readiness(aiohttp_client) -> None:
    app = create_app(api_settings(), adapters=Adapters(database=FakeDatabase()))
    clock = ManualClock(datetime(2026, 5, 1, 12, 0, tzinfo=UTC))
    health = app[keys.HEALTH] = Health(clock)
    health.register("tts")
    health.succeeded("llm")
    health.failed("stt", "provider answered 503; api_key=sk-secret-value")
    client = await aiohttp_client(app)

    response = await client.get("/ready")
    assert response.status == 200  # llm/stt/tts are reported, not required
    by_name = {c["name"]: c for c in (await response.json())["dependencies"]}
    assert [by_name[n]["status"] for n in ("llm", "stt", "tts")] == ["ok", "down", "unknown"]
    assert by_name["llm"]["last_success_at"] == "2026-05-01T12:00:00Z"
    assert by_name["stt"]["last_error_at"] == "2026-05-01T12:00:00Z"
    assert "sk-secret-value" not in by_name["stt"]["error"]
    assert not any(c["required"] for c in by_name.values())

    metrics = await (await client.get("/metrics", headers=AUTH)).text()
    assert 'twin_component_up{component="llm"} 1.0' in metrics
    assert 'twin_component_up{component="stt"} 0.0' in metrics
    assert 'twin_component_up{component="tts"}' not in metrics  # unknown yet
    assert 'twin_component_up{component="database"} 1.0' in metrics
    assert 'twin_component_last_error_timestamp_seconds{component="stt"}' in metrics
    assert "twin_ready 1.0" in metrics


async def test_ready_is_public_and_documented(client) -> None:
    document = await (await client.get("/openapi.json", headers=AUTH)).json()
    operation = document["paths"]["/ready"]["get"]
    assert operation["security"] == []
    assert {"200", "503"} <= set(operation["responses"])
