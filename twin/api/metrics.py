"""Prometheus metrics of the HTTP API, in a registry of the app's own (tests never collide).

Later layers register their collectors in `app[METRICS].registry`; `GET /metrics` exposes it.
"""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from twin.api.middlewares import ROUTE, Handler, Middleware, route_label

# Label values come from a closed set: arbitrary methods or paths must not grow the registry.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "twin_http_requests",
            "HTTP requests answered, by method, route name and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "twin_http_rate_limited",
            "Requests refused with 429 by the API's own rate limits, by limit "
            "(token, login_account, login_address).",
            ("limit",),
            registry=self.registry,
        )
        self.latency = Histogram(
            "twin_http_request_duration_seconds",
            "Time to produce an HTTP response (streamed bodies: until headers), by route name.",
            ("method", "route"),
            registry=self.registry,
        )

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        method = request.method if request.method in _METHODS else "OTHER"
        route = request.get(ROUTE) or route_label(request)
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


METRICS = web.AppKey("twin_api_metrics", ApiMetrics)


def metrics_middleware(metrics: ApiMetrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects, re-raised by the error middleware
            metrics.observe(request, exc.status, time.perf_counter() - started)
            raise
        metrics.observe(request, response.status, time.perf_counter() - started)
        return response

    return middleware
