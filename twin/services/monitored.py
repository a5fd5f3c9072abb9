"""Report every call of a dependency (the brain, speech-to-text, text-to-speech) to the health
registry: `monitored(brain, health, "llm", "reply")` behaves like `brain`, and its `reply()`
tells the registry how it went.

What counts as the component failing: an outage (a transient AdapterError: 5xx, 429,
timeouts, connection errors, after the adapter's own retries and fallback) and a rejected
credential (401/403: nothing will work until the configuration is fixed). A refusal of one
request (400, content refused, audio too long or undecodable) is neither a failure nor a
success of the component: it answered, but says nothing about the next call, and must not make
`GET /ready` report it down. Any other outcome is not reported either.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from twin.errors import AdapterError, describe
from twin.services.health import Health

T = TypeVar("T")

CREDENTIALS_REFUSED = frozenset({401, 403})


def is_down(exc: BaseException) -> bool:
    """Whether a failed call says the dependency is unusable (not just this one request)."""
    if not isinstance(exc, AdapterError):
        return False
    return exc.transient or getattr(exc, "status", None) in CREDENTIALS_REFUSED


class Monitored:
    """A proxy of `target` whose `methods` (coroutine functions) report to `health`."""

    def __init__(self, target: Any, health: Health, component: str, methods: tuple[str, ...]):
        self._target = target
        self._health = health
        self._component = component
        self._methods = frozenset(methods)
        health.register(component)

    @property
    def target(self) -> Any:
        return self._target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name not in self._methods:
            return value
        return self._reported(value)

    def _reported(self, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        health, component = self._health, self._component

        @functools.wraps(call)
        async def reported(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await call(*args, **kwargs)
            except AdapterError as exc:
                if is_down(exc):
                    health.failed(component, describe(exc))
                raise
            health.succeeded(component)
            return result

        return reported


def monitored(target: T | None, health: Health, component: str, *methods: str) -> T | None:
    """`target` reporting the outcome of `methods` to `health` as `component` (None stays
    None: a dependency that is not configured is not listed)."""
    if target is None:
        return None
    return Monitored(target, health, component, methods)  # type: ignore[return-value]
