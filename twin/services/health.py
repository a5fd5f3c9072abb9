"""Health of the daemon's dependencies: when each last worked and when it last failed.

Components are named ("llm", "stt", "tts"; Telegram accounts and the database report their own
state elsewhere). Whoever calls a dependency reports the outcome here; `GET /ready` and
`/metrics` read it, and listeners hear when a failing component works again (the reply pipeline
re-queues the replies an outage made fail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from twin.clock import Clock

log = logging.getLogger("twin.health")

RecoveryListener = Callable[[str], None]


@dataclass
class ComponentState:
    name: str
    last_success_at: datetime | None = None
    last_error_at: datetime | None = None
    last_error: str | None = None

    @property
    def failing(self) -> bool:
        """The last outcome was a failure."""
        if self.last_error_at is None:
            return False
        return self.last_success_at is None or self.last_error_at >= self.last_success_at


class Health:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._components: dict[str, ComponentState] = {}
        self._listeners: list[RecoveryListener] = []

    def _state(self, name: str) -> ComponentState:
        state = self._components.get(name)
        if state is None:
            state = self._components[name] = ComponentState(name)
        return state

    def register(self, name: str) -> None:
        """Make a component known (listed by /ready) before its first use."""
        self._state(name)

    def succeeded(self, name: str) -> None:
        state = self._state(name)
        recovered = state.failing
        state.last_success_at = self._clock.now()
        if recovered:
            log.info("%s works again", name)
            for listener in list(self._listeners):
                try:
                    listener(name)
                except Exception:  # a listener must never break the caller's success path
                    log.exception("health listener failed for %s", name)

    def failed(self, name: str, error: str) -> None:
        state = self._state(name)
        state.last_error_at = self._clock.now()
        state.last_error = error

    def get(self, name: str) -> ComponentState | None:
        return self._components.get(name)

    def components(self) -> list[ComponentState]:
        return sorted(self._components.values(), key=lambda state: state.name)

    def on_recovered(self, listener: RecoveryListener) -> None:
        """Call `listener(name)` whenever a failing component succeeds again."""
        self._listeners.append(listener)
