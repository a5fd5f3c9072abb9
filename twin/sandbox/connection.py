"""One client TCP connection: framing → plain handshake or encrypted MTProto session → RPC.

Why: this is the MTProto *session* layer (MTPROTO-SANDBOX-NOTES.md §3-§4): msg_id/seq_no
bookkeeping, new_session_created, containers, gzip, acks, pings, bad_msg_notification and the
invokeWithLayer/initConnection wrappers. Everything a client can break is contained here:
a framing, crypto or handshake violation closes this connection and nothing else, while a
bug in a handler becomes an rpc_error plus a recorded internal error (which fails the
pytest fixture at teardown).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import logging
import os
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.tl import functions, types
from telethon.tl.alltlobjects import LAYER
from telethon.tl.tlobject import TLObject, TLRequest

from . import crypto, transport
from .handshake import Handshake, HandshakeError
from .rpc import HANDLERS, NO_AUTH, Call
from .state import Authorization, RpcFailure
from .tl import (
    GZIP_PACKED_ID,
    MSG_CONTAINER_ID,
    MSGS_ACK_ID,
    method_label,
    rpc_result,
    serialize,
)

if TYPE_CHECKING:
    from .server import SandboxServer

log = logging.getLogger("twin.sandbox.connection")

_WRAPPERS = (
    functions.InitConnectionRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
    functions.InvokeWithTakeoutRequest,
    functions.InvokeWithMessagesRangeRequest,
)
_IGNORED_SERVICE = (
    types.MsgsStateReq,
    types.MsgResendReq,
    types.MsgsAllInfo,
    types.MsgDetailedInfo,
    types.MsgNewDetailedInfo,
    types.MsgsStateInfo,
)


class ProtocolViolation(Exception):
    """The client sent something MTProto forbids; close the connection."""


class _Close(Exception):
    """Internal: stop serving this connection after flushing what was written."""


class Connection:
    def __init__(
        self, server: SandboxServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peername = writer.get_extra_info("peername")
        self.codec: transport.Codec | None = None
        self.handshake: Handshake | None = None
        self.auth: Authorization | None = None
        self.session_id: int | None = None
        # True from the first request that is not wrapped in invokeWithoutUpdates.
        self.subscribed = False
        self.layer: int | None = None
        self.closed = False
        self._seq = 0
        self._delayed: deque[tuple[float, bytes]] = deque()
        self._delay_task: asyncio.Task | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._deferred: set[asyncio.Task[None]] = set()  # results a handler gives later

    def __repr__(self) -> str:
        user = self.auth.user_id if self.auth else None
        return f"<Connection {self.peername} user={user} session={self.session_id}>"

    @property
    def user_id(self) -> int | None:
        return self.auth.user_id if self.auth else None

    # -- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            self.codec = await transport.detect(self.reader)
            while not self.closed:
                payload = await self.codec.read(self.reader)
                started = time.perf_counter()
                self._handle_payload(payload)
                self.server.busy_seconds += time.perf_counter() - started
                if not self.closed:
                    await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the peer went away, possibly mid-frame
        except _Close:
            pass
        except (
            transport.TransportError,
            crypto.CryptoError,
            HandshakeError,
            ProtocolViolation,
        ) as exc:
            self.server.note_client_error(self, exc)
        except Exception as exc:
            self.server.note_internal_error(f"{self!r}: unhandled {exc!r}", exc)
        finally:
            self.close()
            if self._delay_task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._delay_task

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if self._delay_task is not None:
            self._delay_task.cancel()
        self._delayed.clear()
        self.writer.close()
        self.server.forget(self)

    # -- output -----------------------------------------------------------------------------

    def _write(self, frame: bytes) -> None:
        if self.closed or self.writer.transport.is_closing():
            return
        latency = self.server.faults.latency
        if self._delayed or latency > 0:
            loop = asyncio.get_running_loop()
            self._delayed.append((loop.time() + latency, frame))
            if self._delay_task is None or self._delay_task.done():
                self._delay_task = loop.create_task(self._drain_delayed())
        else:
            self.writer.write(frame)

    async def _drain_delayed(self) -> None:
        loop = asyncio.get_running_loop()
        while self._delayed:
            due, frame = self._delayed[0]
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
                continue
            self._delayed.popleft()
            if not self.closed and not self.writer.transport.is_closing():
                self.writer.write(frame)

    def send(self, body: bytes | TLObject, *, response: bool, content_related: bool = True) -> None:
        """Encrypt and frame one server message for the current session."""
        if self.closed or self.auth is None or self.session_id is None:
            return
        if isinstance(body, TLObject):
            body = bytes(body)
        if content_related:
            seq_no = self._seq * 2 + 1
            self._seq += 1
        else:
            seq_no = self._seq * 2
        msg_id = self.server.clock.msg_id(response=response)
        data = crypto.encrypt_server_message(
            self.auth.auth_key, self.auth.salt, self.session_id, msg_id, seq_no, body
        )
        self._write(self.codec.encode(data))

    def push(self, body: bytes) -> None:
        """Deliver an already serialised Updates object, unless the drop fault eats it."""
        faults = self.server.faults
        if faults.should_drop():
            return
        self.send(faults.garble(body, self.user_id), response=False)

    def _answer_later(self, msg_id: int, request: object, pending: asyncio.Future[Any]) -> None:
        """Send the result of a deferred handler once it is there (BOT_RESPONSE_TIMEOUT after
        CALLBACK_TIMEOUT seconds without one)."""
        from .api_bots import CALLBACK_TIMEOUT

        async def answer() -> None:
            try:
                result = await asyncio.wait_for(pending, CALLBACK_TIMEOUT)
            except TimeoutError:
                self.rpc_error(msg_id, 400, "BOT_RESPONSE_TIMEOUT")
            except RpcFailure as failure:
                self.rpc_error(msg_id, failure.code, failure.message)
            else:
                self.send(rpc_result(msg_id, serialize(result)), response=True)
            finally:
                self.server.notify_change()

        task = asyncio.get_running_loop().create_task(answer())
        self._deferred.add(task)
        task.add_done_callback(self._deferred.discard)

    def rpc_error(self, req_msg_id: int, code: int, message: str) -> None:
        self.send(rpc_result(req_msg_id, bytes(types.RpcError(code, message))), response=True)

    # -- input ------------------------------------------------------------------------------

    def _handle_payload(self, payload: bytes) -> None:
        if len(payload) < 8:
            raise ProtocolViolation(f"payload of {len(payload)} bytes")
        (key_id,) = struct.unpack_from("<Q", payload)
        if key_id == 0:
            self._handle_plain(payload)
        else:
            self._handle_encrypted(key_id, payload)

    def _handle_plain(self, payload: bytes) -> None:
        if len(payload) < 20:
            raise ProtocolViolation("truncated plain message")
        _msg_id, length = struct.unpack_from("<qi", payload, 8)
        body = payload[20 : 20 + length]
        if length <= 0 or len(body) != length:
            raise ProtocolViolation("plain message length mismatch")
        try:
            request = BinaryReader(body).tgread_object()
        except Exception as exc:
            raise ProtocolViolation(f"unparsable plain message: {exc}") from exc
        if self.handshake is None:
            self.handshake = Handshake(self.server.key, self.server.clock)
        reply = bytes(self.handshake.handle(request))
        if self.handshake.auth_key is not None:
            self.server.register_auth_key(self.handshake.auth_key, self.handshake.first_salt)
            self.handshake = None
        msg_id = self.server.clock.msg_id(response=True)
        self._write(self.codec.encode(struct.pack("<qqi", 0, msg_id, len(reply)) + reply))

    def _handle_encrypted(self, key_id: int, payload: bytes) -> None:
        auth = self.server.world.auths.get(key_id)
        if auth is None:
            # Telegram's answer to an unknown key: transport error -404, then hang up.
            error = ProtocolViolation(f"unknown auth_key_id {key_id:#x}")
            self.server.note_client_error(self, error)
            if not self.writer.transport.is_closing():
                self.writer.write(self.codec.encode_error(404))
            raise _Close
        envelope = crypto.decrypt_client_message(auth.auth_key, payload)
        self.auth = auth
        if envelope.session_id != self.session_id:
            self.session_id = envelope.session_id
            self._seq = 0
            if envelope.session_id not in auth.sessions:
                auth.sessions.add(envelope.session_id)
                self.send(
                    types.NewSessionCreated(
                        first_msg_id=envelope.msg_id,
                        unique_id=int.from_bytes(os.urandom(8), "little", signed=True),
                        server_salt=auth.salt,
                    ),
                    response=False,
                )
        if envelope.msg_id % 4:
            self._bad_msg(envelope.msg_id, envelope.seq_no, 18)
            return
        age = self.server.clock.now() - (envelope.msg_id >> 32)
        if age > 300 or age < -30:
            self._bad_msg(envelope.msg_id, envelope.seq_no, 16 if age > 0 else 17)
            return
        self._process(envelope.msg_id, envelope.body, container_ok=True)

    def _bad_msg(self, msg_id: int, seq_no: int, code: int) -> None:
        self.server.bad_msg_notifications[code] += 1
        notification = types.BadMsgNotification(msg_id, seq_no, code)
        self.send(notification, response=True, content_related=False)

    def _process(self, msg_id: int, body: bytes, *, container_ok: bool) -> None:
        if len(body) < 4:
            raise ProtocolViolation("empty message body")
        (constructor,) = struct.unpack_from("<I", body)
        if constructor == MSG_CONTAINER_ID:
            if not container_ok:
                raise ProtocolViolation("nested msg_container")
            self._process_container(body)
            return
        if constructor == GZIP_PACKED_ID:
            self._process(msg_id, gzip.decompress(BinaryReader(body[4:]).tgread_bytes()),
                          container_ok=container_ok)
            return
        if constructor == MSGS_ACK_ID:
            return  # Telethon acks everything; nothing to do
        try:
            obj = BinaryReader(body).tgread_object()
        except TypeNotFoundError:
            self.rpc_error(msg_id, 400, f"INPUT_METHOD_INVALID_{constructor}")
            return
        except Exception:
            self.rpc_error(msg_id, 400, "INPUT_FETCH_FAIL")
            return
        self._dispatch(msg_id, obj)

    def _process_container(self, body: bytes) -> None:
        (count,) = struct.unpack_from("<i", body, 4)
        pos = 8
        for _ in range(count):
            if pos + 16 > len(body):
                raise ProtocolViolation("truncated msg_container")
            inner_id, _inner_seq, length = struct.unpack_from("<qii", body, pos)
            pos += 16
            inner = body[pos : pos + length]
            if len(inner) != length:
                raise ProtocolViolation("truncated message in msg_container")
            pos += length
            self._process(inner_id, inner, container_ok=False)

    def _dispatch(self, msg_id: int, obj: object) -> None:
        if isinstance(obj, functions.PingRequest):
            self.send(types.Pong(msg_id, obj.ping_id), response=True)
        elif isinstance(obj, functions.PingDelayDisconnectRequest):
            self.send(types.Pong(msg_id, obj.ping_id), response=True)
            if self._ping_timer is not None:
                self._ping_timer.cancel()
                self._ping_timer = None
            if obj.disconnect_delay > 0:
                self._ping_timer = asyncio.get_running_loop().call_later(
                    obj.disconnect_delay, self.close
                )
        elif isinstance(obj, functions.GetFutureSaltsRequest):
            now = self.server.clock.date()
            salt = types.FutureSalt(now, now + datetime.timedelta(days=1), self.auth.salt)
            self.send(
                types.FutureSalts(msg_id, self.server.clock.unixtime(), [salt] * max(1, obj.num)),
                response=True,
            )
        elif isinstance(obj, functions.DestroySessionRequest):
            known = obj.session_id in self.auth.sessions
            self.auth.sessions.discard(obj.session_id)
            result = types.DestroySessionOk if known else types.DestroySessionNone
            self.send(result(obj.session_id), response=True)
        elif isinstance(obj, functions.RpcDropAnswerRequest):
            self.send(rpc_result(msg_id, bytes(types.RpcAnswerUnknown())), response=True)
        elif isinstance(obj, _IGNORED_SERVICE):
            pass
        elif isinstance(obj, TLRequest):
            self._invoke(msg_id, obj)
        else:
            raise ProtocolViolation(f"unexpected {type(obj).__name__} from client")

    def _invoke(self, msg_id: int, request: TLRequest) -> None:
        subscribe = True
        while True:
            if isinstance(request, functions.InvokeWithLayerRequest):
                if request.layer != LAYER:
                    message = (
                        f"client layer {request.layer} != sandbox layer {LAYER}: the sandbox "
                        "serialises with the installed Telethon and cannot serve other layers"
                    )
                    self.server.note_internal_error(message)
                    self.rpc_error(msg_id, 400, "LAYER_MISMATCH_WITH_SANDBOX")
                    raise _Close
                self.layer = request.layer
                request = request.query
            elif isinstance(request, functions.InvokeWithoutUpdatesRequest):
                subscribe = False
                request = request.query
            elif isinstance(request, _WRAPPERS):
                if isinstance(request, functions.InitConnectionRequest):
                    self.auth.client_info = {
                        "api_id": request.api_id,
                        "device_model": request.device_model,
                        "system_version": request.system_version,
                        "app_version": request.app_version,
                        "lang_code": request.lang_code,
                    }
                request = request.query
            else:
                break
        if subscribe:
            self.subscribed = True
        self.server.count_call(request)
        try:
            fault = self.server.faults.check(request)
            if fault is not None:
                raise RpcFailure(*fault)
            handler = HANDLERS.get(type(request))
            if handler is None:
                log.info("sandbox: unsupported method %s", method_label(request))
                self.server.unsupported.append(method_label(request))
                raise RpcFailure(400, "METHOD_NOT_SUPPORTED_BY_SANDBOX")
            if type(request) not in NO_AUTH and self.auth.user_id is None:
                raise RpcFailure(401, "AUTH_KEY_UNREGISTERED")
            result = handler(Call(self.server, self, self.auth, msg_id), request)
            if isinstance(result, asyncio.Future):  # answered later (a bot's callback answer)
                self._answer_later(msg_id, request, result)
                return
            body = serialize(result)
        except RpcFailure as failure:
            self.rpc_error(msg_id, failure.code, failure.message)
        except Exception as exc:
            self.server.note_internal_error(
                f"handler for {method_label(request)} crashed: {exc!r}", exc
            )
            # 400, not 500: Telethon silently retries 5xx, which would only hide the bug.
            self.rpc_error(msg_id, 400, f"SANDBOX_INTERNAL_{type(exc).__name__.upper()}")
        else:
            self.send(rpc_result(msg_id, body, compress=not isinstance(result, types.upload.File)),
                      response=True)
        finally:
            self.server.notify_change()
