"""Server side of the MTProto auth-key exchange: req_pq_multi, req_DH_params, set_client_DH_params.

Why a separate state machine: it runs over unencrypted "plain" messages before any auth key
exists, has its own failure modes (every violation closes the connection) and is the part
most sensitive to Telethon's exact byte layout (minimal big-endian auth keys, legacy RSA
padding). See MTPROTO-SANDBOX-NOTES.md §2.
"""

from __future__ import annotations

import os
import secrets
from hashlib import sha1

from telethon.crypto import AuthKey
from telethon.extensions import BinaryReader
from telethon.tl import functions, types

from . import crypto
from .tl import Clock


class HandshakeError(Exception):
    """The client deviated from the exchange; the connection must be closed."""


def _is_probable_prime(n: int) -> bool:
    if n < 4:
        return n in (2, 3)
    if n % 2 == 0:
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for a in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _random_prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if _is_probable_prime(candidate):
            return candidate


def _int128() -> int:
    return int.from_bytes(os.urandom(16), "little", signed=True)


class Handshake:
    """One connection's key exchange. `handle()` maps a plain request to its plain reply."""

    def __init__(self, key: crypto.ServerKey, clock: Clock) -> None:
        self._key = key
        self._clock = clock
        self._reset()
        self.auth_key: AuthKey | None = None
        self.first_salt = 0

    def _reset(self) -> None:
        self._nonce: int | None = None
        self._server_nonce: int | None = None
        self._pq = b""
        self._new_nonce: int | None = None

    def handle(self, request: object) -> object:
        if isinstance(request, functions.ReqPqMultiRequest | functions.ReqPqRequest):
            return self._res_pq(request.nonce)
        if isinstance(request, functions.ReqDHParamsRequest):
            return self._server_dh_params(request)
        if isinstance(request, functions.SetClientDHParamsRequest):
            return self._dh_gen(request)
        raise HandshakeError(f"unexpected plain message {type(request).__name__}")

    def _res_pq(self, nonce: int) -> types.ResPQ:
        self._reset()
        p, q = sorted((_random_prime(31), _random_prime(31)))
        self._nonce, self._server_nonce = nonce, _int128()
        self._pq = crypto.minimal_bytes(p * q)
        self._p, self._q = crypto.minimal_bytes(p), crypto.minimal_bytes(q)
        return types.ResPQ(
            nonce=nonce,
            server_nonce=self._server_nonce,
            pq=self._pq,
            server_public_key_fingerprints=[self._key.fingerprint],
        )

    def _check_nonces(self, request: object) -> None:
        if self._nonce is None:
            raise HandshakeError("DH step before req_pq")
        if request.nonce != self._nonce or request.server_nonce != self._server_nonce:
            raise HandshakeError("nonce mismatch")

    def _server_dh_params(self, request: functions.ReqDHParamsRequest) -> types.ServerDHParamsOk:
        self._check_nonces(request)
        if request.public_key_fingerprint != self._key.fingerprint:
            raise HandshakeError("unknown RSA fingerprint")
        if (request.p, request.q) != (self._p, self._q):
            raise HandshakeError("wrong factorisation of pq")
        try:
            inner_bytes = crypto.decrypt_inner_data(self._key, request.encrypted_data)
            inner = BinaryReader(inner_bytes).tgread_object()
        except Exception as exc:
            raise HandshakeError(f"cannot decrypt p_q_inner_data: {exc}") from exc
        inner_types = (types.PQInnerData, types.PQInnerDataDc, types.PQInnerDataTempDc)
        if not isinstance(inner, inner_types):
            raise HandshakeError(f"unexpected inner data {type(inner).__name__}")
        if inner.nonce != self._nonce or inner.server_nonce != self._server_nonce:
            raise HandshakeError("inner data nonce mismatch")
        if inner.pq != self._pq:
            raise HandshakeError("inner data pq mismatch")
        self._new_nonce = inner.new_nonce
        _, g_a = crypto.dh_server_secret()
        answer = bytes(
            types.ServerDHInnerData(
                nonce=self._nonce,
                server_nonce=self._server_nonce,
                g=crypto.DH_G,
                dh_prime=crypto.DH_PRIME_BYTES,
                g_a=crypto.minimal_bytes(g_a),
                server_time=self._clock.unixtime(),
            )
        )
        return types.ServerDHParamsOk(
            nonce=self._nonce,
            server_nonce=self._server_nonce,
            encrypted_answer=crypto.encrypt_tmp_aes(answer, self._server_nonce, self._new_nonce),
        )

    def _dh_gen(self, request: functions.SetClientDHParamsRequest) -> types.DhGenOk:
        self._check_nonces(request)
        if self._new_nonce is None:
            raise HandshakeError("set_client_DH_params before req_DH_params")
        plain = crypto.decrypt_tmp_aes(request.encrypted_data, self._server_nonce, self._new_nonce)
        reader = BinaryReader(plain[20:])
        try:
            inner = reader.tgread_object()
        except Exception as exc:
            raise HandshakeError(f"cannot parse client_DH_inner_data: {exc}") from exc
        length = reader.tell_position()
        if not isinstance(inner, types.ClientDHInnerData):
            raise HandshakeError("expected client_DH_inner_data")
        if sha1(plain[20 : 20 + length]).digest() != plain[:20]:
            raise HandshakeError("client_DH_inner_data hash mismatch")
        if inner.nonce != self._nonce or inner.server_nonce != self._server_nonce:
            raise HandshakeError("client_DH_inner_data nonce mismatch")
        g_b = int.from_bytes(inner.g_b, "big")
        if not crypto.DH_SAFETY <= g_b <= crypto.DH_PRIME - crypto.DH_SAFETY:
            raise HandshakeError("g_b outside the safety range")
        a, _ = crypto.dh_server_secret()
        # The key is g^ab as 256 big-endian bytes, as on Telegram. Telethon keeps it minimal, so
        # about 1 handshake in 256 (top byte 0) fails its new_nonce_hash1 check and is redone;
        # accepting its 255-byte key instead made sessions StringSession cannot restore.
        self.auth_key = AuthKey(pow(g_b, a, crypto.DH_PRIME).to_bytes(256, "big"))
        reply = types.DhGenOk(
            nonce=self._nonce,
            server_nonce=self._server_nonce,
            new_nonce_hash1=self.auth_key.calc_new_nonce_hash(self._new_nonce, 1),
        )
        self.first_salt = _first_salt(self._new_nonce, self._server_nonce)
        self._reset()
        return reply


def _first_salt(new_nonce: int, server_nonce: int) -> int:
    nn = new_nonce.to_bytes(32, "little", signed=True)[:8]
    sn = server_nonce.to_bytes(16, "little", signed=True)[:8]
    return int.from_bytes(bytes(a ^ b for a, b in zip(nn, sn, strict=True)), "little", signed=True)
