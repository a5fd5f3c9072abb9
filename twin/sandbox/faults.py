"""Fault switches: injected RPC errors (FLOOD_WAIT_X), dropped update pushes, undecodable
update pushes, added latency. (A whole-server outage is `SandboxServer.pause()` / `resume()`.)

Why they live on the server: the daemon must be tested against the failures real Telegram
produces, with the stock client in the loop. Drops use a seeded RNG so a failing run can be
replayed, and only affect *pushes*: history and updates.getDifference stay correct, which is
exactly the situation Telethon's gap recovery is meant to handle.

Method names accept Telethon class names ("messages.SendMessageRequest") or TL names
("messages.sendMessage"); see `tl.method_key`.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from telethon.tl import types
from telethon.tl.tlobject import TLObject

from .tl import method_key

#: A constructor id no layer of the installed Telethon knows (checked by the sandbox's tests).
UNKNOWN_CONSTRUCTOR = 0xDEADBEEF
_MESSAGE = struct.pack("<I", types.Message.CONSTRUCTOR_ID)


@dataclass
class _InjectedError:
    code: int
    message: str
    remaining: int | None  # None = forever


class Faults:
    def __init__(self) -> None:
        self._errors: dict[str, list[_InjectedError]] = {}
        self._drop_fraction = 0.0
        self._rng = random.Random(0)
        self.dropped = 0
        self._undecodable: list[int | None] = []  # one entry per push to garble: user id or None
        self.garbled = 0
        #: Seconds added to every frame the server writes (one-way latency, order preserved).
        self.latency = 0.0

    # -- RPC errors ---------------------------------------------------------------------------

    def rpc_error(self, method: str, code: int, message: str, *, times: int | None = 1) -> None:
        """Answer the next `times` calls of `method` (None = all) with rpc_error(code, message)."""
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        self._errors.setdefault(method_key(method), []).append(
            _InjectedError(code, message, times)
        )

    def flood_wait(self, method: str, seconds: int, *, times: int | None = 1) -> None:
        """Answer `method` with 420 FLOOD_WAIT_<seconds> (Telethon: FloodWaitError.seconds)."""
        self.rpc_error(method, 420, f"FLOOD_WAIT_{int(seconds)}", times=times)

    def check(self, request: TLObject) -> tuple[int, str] | None:
        """The (code, message) to fail this call with, consuming one use, or None."""
        queue = self._errors.get(method_key(request))
        if not queue:
            return None
        fault = queue[0]
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.pop(0)
        return fault.code, fault.message

    # -- update drops -------------------------------------------------------------------------

    def drop_updates(self, fraction: float, *, seed: int = 0) -> None:
        """Silently drop this fraction of pushed updates (0 disables), reproducibly by seed."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be within [0, 1]")
        self._drop_fraction = fraction
        self._rng = random.Random(seed)

    def should_drop(self) -> bool:
        if self._drop_fraction <= 0.0:
            return False
        if self._rng.random() < self._drop_fraction:
            self.dropped += 1
            return True
        return False

    # -- undecodable pushes ---------------------------------------------------------------------

    def undecodable_pushes(self, times: int = 1, *, to_user: int | None = None) -> None:
        """Garble the next `times` pushed updates (to `to_user` only, if given) the way a server
        on a newer layer would look to this client: the first `Message` inside gets a
        constructor id the client does not know (the outer one if there is none). The server's
        state (pts) moves on as usual, so the client sees a gap with the next update."""
        if times < 1:
            raise ValueError("times must be >= 1")
        self._undecodable.extend([to_user] * times)

    def garble(self, body: bytes, user_id: int | None) -> bytes:
        """`body`, garbled if an undecodable push is due for `user_id`."""
        for index, target in enumerate(self._undecodable):
            if target is None or target == user_id:
                del self._undecodable[index]
                self.garbled += 1
                unknown = struct.pack("<I", UNKNOWN_CONSTRUCTOR)
                at = body.find(_MESSAGE)
                if at < 0:
                    return unknown + body[4:]
                return body[:at] + unknown + body[at + 4 :]
        return body

    # -- all ------------------------------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.latency = seconds

    def clear(self) -> None:
        """Switch every fault off."""
        self._errors.clear()
        self._drop_fraction = 0.0
        self._undecodable.clear()
        self.latency = 0.0
