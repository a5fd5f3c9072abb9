"""MTProto TCP transports: Full (Telethon's default), Intermediate, padded Intermediate, Abridged.

Why: the transport is chosen by the client's first bytes (0xef = Abridged, 0xeeeeeeee =
Intermediate, 0xdddddddd = padded Intermediate, anything else is the length field of a Full
frame) and is independent of everything above it. Any framing violation raises
`TransportError`, which closes that one connection and nothing else.
"""

from __future__ import annotations

import asyncio
import os
import struct
from zlib import crc32

#: Largest frame accepted: upload parts are at most 512 KiB, plus MTProto overhead.
MAX_FRAME = 2 * 1024 * 1024

ABRIDGED_TAG = b"\xef"
INTERMEDIATE_TAG = b"\xee\xee\xee\xee"
PADDED_INTERMEDIATE_TAG = b"\xdd\xdd\xdd\xdd"


class TransportError(Exception):
    """The peer violated the framing; the connection must be closed."""


class Codec:
    """Frames payloads for one connection (one instance per connection)."""

    name = "?"

    async def read(self, reader: asyncio.StreamReader) -> bytes:
        raise NotImplementedError

    def encode(self, payload: bytes) -> bytes:
        raise NotImplementedError

    def encode_error(self, code: int) -> bytes:
        """A transport error (e.g. -404 "auth key not found") is a 4-byte negative payload."""
        return self.encode(struct.pack("<i", -abs(code)))


class FullCodec(Codec):
    """len (payload + 12) | seq | payload | crc32, with per-direction sequence numbers."""

    name = "full"

    def __init__(self, first4: bytes) -> None:
        self._pending_first = first4
        self._recv_seq = 0
        self._send_seq = 0

    async def read(self, reader: asyncio.StreamReader) -> bytes:
        if self._pending_first is not None:
            head = self._pending_first + await reader.readexactly(4)
            self._pending_first = None
        else:
            head = await reader.readexactly(8)
        length, seq = struct.unpack("<ii", head)
        if not 12 < length <= MAX_FRAME or length % 4:
            raise TransportError(f"full: bad frame length {length}")
        if seq != self._recv_seq:
            raise TransportError(f"full: expected seq {self._recv_seq}, got {seq}")
        rest = await reader.readexactly(length - 8)
        payload, checksum = rest[:-4], struct.unpack("<I", rest[-4:])[0]
        if crc32(head + payload) != checksum:
            raise TransportError("full: crc32 mismatch")
        self._recv_seq += 1
        return payload

    def encode(self, payload: bytes) -> bytes:
        head = struct.pack("<ii", len(payload) + 12, self._send_seq)
        self._send_seq += 1
        return head + payload + struct.pack("<I", crc32(head + payload))


class IntermediateCodec(Codec):
    """int32 length | payload (padded variant: 0-15 random bytes the reader drops)."""

    name = "intermediate"

    def __init__(self, padded: bool = False) -> None:
        self.padded = padded
        if padded:
            self.name = "padded-intermediate"

    async def read(self, reader: asyncio.StreamReader) -> bytes:
        (length,) = struct.unpack("<i", await reader.readexactly(4))
        if not 0 < length <= MAX_FRAME:
            raise TransportError(f"{self.name}: bad frame length {length}")
        if not self.padded and length % 4:
            raise TransportError(f"{self.name}: length {length} not a multiple of 4")
        payload = await reader.readexactly(length)
        return payload[: len(payload) - len(payload) % 4] if self.padded else payload

    def encode(self, payload: bytes) -> bytes:
        if self.padded:
            payload += os.urandom(len(payload) % 4 and 4 - len(payload) % 4)
        return struct.pack("<i", len(payload)) + payload


class AbridgedCodec(Codec):
    """1-byte length/4 (or 0x7f + 3 bytes) | payload."""

    name = "abridged"

    async def read(self, reader: asyncio.StreamReader) -> bytes:
        first = (await reader.readexactly(1))[0] & 0x7F  # the top bit requests a quick ack
        words = first if first < 0x7F else int.from_bytes(await reader.readexactly(3), "little")
        length = words * 4
        if not 0 < length <= MAX_FRAME:
            raise TransportError(f"abridged: bad frame length {length}")
        return await reader.readexactly(length)

    def encode(self, payload: bytes) -> bytes:
        words = len(payload) // 4
        if words < 0x7F:
            return bytes((words,)) + payload
        return b"\x7f" + words.to_bytes(3, "little") + payload


async def detect(reader: asyncio.StreamReader) -> Codec:
    """Pick the codec from the first bytes the client sends."""
    first = await reader.readexactly(1)
    if first == ABRIDGED_TAG:
        return AbridgedCodec()
    first4 = first + await reader.readexactly(3)
    if first4 == INTERMEDIATE_TAG:
        return IntermediateCodec()
    if first4 == PADDED_INTERMEDIATE_TAG:
        return IntermediateCodec(padded=True)
    if first4[:4] in (b"POST", b"GET ", b"HEAD"):
        raise TransportError("HTTP transport is not supported")
    return FullCodec(first4)
