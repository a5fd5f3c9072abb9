"""TL serialisation helpers and the server clock.

Why: requests are parsed and results serialised with Telethon's own generated classes, so the
sandbox always speaks the installed layer. Telethon lacks a few server-side pieces, which live
here: bare Vector results, Bool constants, method names for fault switches, and one clock that
yields both `server_time` and msg_ids (they must agree, or Telethon drops everything as "too
new"/"too old").
"""

from __future__ import annotations

import datetime as dt
import gzip
import struct
import time
from typing import Any

from telethon.tl.tlobject import TLObject

VECTOR_ID = 0x1CB5C415
BOOL_TRUE = struct.pack("<I", 0x997275B5)
BOOL_FALSE = struct.pack("<I", 0xBC799737)
GZIP_PACKED_ID = 0x3072CFA1
MSG_CONTAINER_ID = 0x73F1F8DC
MSGS_ACK_ID = 0x62D6B459
RPC_RESULT_ID = 0xF35C6D01

#: Results larger than this are sent gzip_packed inside rpc_result, as Telegram does.
GZIP_THRESHOLD = 16 * 1024


def serialize(value: Any) -> bytes:
    """Serialise an RPC result: TL objects, bools, raw bytes or a (bare-typed) Vector."""
    if isinstance(value, bool):
        return BOOL_TRUE if value else BOOL_FALSE
    if isinstance(value, TLObject):
        return bytes(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple):
        return struct.pack("<Ii", VECTOR_ID, len(value)) + b"".join(serialize(v) for v in value)
    raise TypeError(f"cannot serialise RPC result of type {type(value).__name__}")


def rpc_result(req_msg_id: int, body: bytes, *, compress: bool = True) -> bytes:
    """rpc_result#f35c6d01: req_msg_id then the raw result, optionally gzip_packed."""
    if compress and len(body) > GZIP_THRESHOLD:
        packed = struct.pack("<I", GZIP_PACKED_ID) + TLObject.serialize_bytes(
            gzip.compress(body, compresslevel=1)
        )
        if len(packed) < len(body):
            body = packed
    return struct.pack("<Iq", RPC_RESULT_ID, req_msg_id) + body


def method_key(name_or_request: str | TLObject | type) -> str:
    """Normalise a method name for fault switches.

    "messages.SendMessageRequest", "messages.sendMessage" and a SendMessageRequest instance all
    become "messages.sendmessage".
    """
    if isinstance(name_or_request, str):
        name = name_or_request
    else:
        cls = name_or_request if isinstance(name_or_request, type) else type(name_or_request)
        namespace = cls.__module__.rsplit(".", 1)[-1]
        name = cls.__name__ if namespace == "functions" else f"{namespace}.{cls.__name__}"
    name = name.lower()
    return name[: -len("request")] if name.endswith("request") else name


def method_label(request: TLObject) -> str:
    """Human-readable "namespace.ClassName" for logs and error messages."""
    cls = type(request)
    namespace = cls.__module__.rsplit(".", 1)[-1]
    return cls.__name__ if namespace == "functions" else f"{namespace}.{cls.__name__}"


def utf16_len(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class Clock:
    """The one server clock: wall time (plus an optional skew) and monotonic msg_ids.

    Server msg_ids are (unixtime << 32 | fraction), strictly increasing, ≡ 1 (mod 4) for
    responses and ≡ 3 (mod 4) for unsolicited messages. Telethon only enforces oddness, a
    300 s/30 s window around the handshake's server_time, and uniqueness.
    """

    def __init__(self, skew: float = 0.0) -> None:
        self.skew = skew
        # Seconds added to the dates the server writes (messages, statuses, update dates) but
        # not to msg_ids or the handshake's server_time: a test whose daemon runs on a manual
        # clock moves the sandbox's dates with it (Telethon checks only msg_id times).
        self.date_offset = 0.0
        self._last = 0

    def now(self) -> float:
        return time.time() + self.skew

    def unixtime(self) -> int:
        return int(self.now())

    def date(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(int(self.now() + self.date_offset), dt.UTC)

    def msg_id(self, *, response: bool) -> int:
        now = self.now()
        base = (int(now) << 32) | (int((now % 1) * 2**32) & ~3)
        if base <= self._last:
            base = self._last + 4
        self._last = base
        return base | (1 if response else 3)
