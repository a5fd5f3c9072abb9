"""Server-side MTProto cryptography: the RSA key, the DH group and message encryption.

Why a module of its own: the handshake, the connection layer and the standalone CLI all need
the same RSA key and the same mirrored MTProto 2.0 key derivation. Telethon only implements the
client direction, so the server direction (decrypt with x=0, encrypt with x=8) lives here. The
primitives themselves (AES-IGE, the `_calc_key` KDF, `AuthKey`) are Telethon's, so the server
can never drift from what the installed client computes.
"""

from __future__ import annotations

import functools
import os
import struct
from dataclasses import dataclass
from hashlib import sha1, sha256

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as crsa
from telethon.crypto import AES, AuthKey
from telethon.crypto import rsa as telethon_rsa
from telethon.network.mtprotostate import MTProtoState

#: The standard 2048-bit MTProto DH prime (also the one `telethon.password` accepts without a
#: slow primality check when used for SRP with g in {3, 4, 5, 7}).
DH_PRIME_BYTES = bytes.fromhex(
    "C71CAEB9C6B1C9048E6C522F70F13F73980D40238E3E21C14934D037563D930F"
    "48198A0AA7C14058229493D22530F4DBFA336F6E0AC925139543AED44CCE7C37"
    "20FD51F69458705AC68CD4FE6B6B13ABDC9746512969328454F18FAF8C595F64"
    "2477FE96BB2A941D5BCD1D4AC8CC49880708FA9B378E3C4F3A9060BEE67CF9A4"
    "A4A695811051907E162753B56B0F6B410DBA74D8A84B2A14B3144E0EF1284754"
    "FD17ED950D5965B4B9DD46582DB1178D169C6BC465B0D6FF9CA3928FEF5B9AE4"
    "E418FC15E83EBEA0F87FA9FF5EED70050DED2849F47BF959D956850CE929851F"
    "0D8115F635B105EE2E4E15D04B2454BF6F4FADF034B10403119CD8E3B92FCC5B"
)
DH_PRIME = int.from_bytes(DH_PRIME_BYTES, "big")
DH_G = 3
#: Both sides must keep g_a and g_b within [2^1984, p - 2^1984].
DH_SAFETY = 2 ** (2048 - 64)


class CryptoError(Exception):
    """Incoming data failed an integrity check: the connection must be closed."""


def minimal_bytes(value: int) -> bytes:
    """Big-endian bytes without leading zeros, exactly like `telethon.crypto.rsa`."""
    return telethon_rsa.get_byte_array(value)


@dataclass(frozen=True)
class ServerKey:
    """The sandbox's RSA key pair plus what clients need to trust it."""

    private: crsa.RSAPrivateKey
    n: int
    e: int
    fingerprint: int
    public_key_pem: str

    @classmethod
    def from_private(cls, private: crsa.RSAPrivateKey) -> ServerKey:
        numbers = private.public_key().public_numbers()
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ).decode("ascii")
        fingerprint = telethon_rsa._compute_fingerprint(_NE(numbers.n, numbers.e))
        return cls(private, numbers.n, numbers.e, fingerprint, pem)

    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_private_pem(cls, pem: bytes) -> ServerKey:
        key = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(key, crsa.RSAPrivateKey)
        return cls.from_private(key)

    def raw_decrypt(self, block: bytes) -> int:
        """Textbook RSA decryption (c^d mod n) with CRT, as MTProto uses no OAEP."""
        numbers = self.private.private_numbers()
        c = int.from_bytes(block, "big")
        if c >= self.n:
            raise CryptoError("RSA block larger than the modulus")
        m1 = pow(c, numbers.dmp1, numbers.p)
        m2 = pow(c, numbers.dmq1, numbers.q)
        h = (numbers.iqmp * (m1 - m2)) % numbers.p
        return m2 + h * numbers.q


@dataclass(frozen=True)
class _NE:
    """Duck-typed stand-in for `rsa.PublicKey` accepted by `_compute_fingerprint`."""

    n: int
    e: int


@functools.lru_cache(maxsize=1)
def default_server_key() -> ServerKey:
    """One RSA key per process: generating 2048-bit keys costs too much for every fixture."""
    private = crsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ServerKey.from_private(private)


@functools.lru_cache(maxsize=1)
def dh_server_secret() -> tuple[int, int]:
    """The server's DH secret `a` and `g_a`, shared by all handshakes of this process.

    Security is irrelevant here and each 2048-bit modexp costs ~15 ms in CPython, so the server
    side of the exchange is computed once; every auth key still differs because each client
    picks its own `b`. A 320-bit exponent keeps `g_b^a` cheap as well.
    """
    while True:
        a = int.from_bytes(os.urandom(40), "big")
        g_a = pow(DH_G, a, DH_PRIME)
        if DH_SAFETY <= g_a <= DH_PRIME - DH_SAFETY:
            return a, g_a


def decrypt_inner_data(key: ServerKey, encrypted: bytes) -> bytes:
    """Invert `req_DH_params.encrypted_data`, returning the serialized inner TL object.

    Telethon 1.4x uses the legacy scheme (sha1 + data + random, 255 bytes); other clients use
    RSA_PAD. The two decoders reject each other's blocks, so try legacy first.
    """
    from telethon.extensions import BinaryReader

    m = key.raw_decrypt(encrypted)
    if m < 1 << (8 * 255):
        plain = m.to_bytes(255, "big")
        try:
            reader = BinaryReader(plain[20:])
            reader.tgread_object()
            length = reader.tell_position()
        except Exception:  # any parse failure means "not the legacy scheme"
            length = -1
        if length > 0 and sha1(plain[20 : 20 + length]).digest() == plain[:20]:
            return plain[20 : 20 + length]
    return _decrypt_rsa_pad(m.to_bytes(256, "big"))


def _decrypt_rsa_pad(m: bytes) -> bytes:
    temp_key_xor, aes_encrypted = m[:32], m[32:]
    mask = sha256(aes_encrypted).digest()
    temp_key = bytes(a ^ b for a, b in zip(temp_key_xor, mask, strict=True))
    data_with_hash = AES.decrypt_ige(aes_encrypted, temp_key, bytes(32))
    data_with_padding = data_with_hash[:192][::-1]
    if sha256(temp_key + data_with_padding).digest() != data_with_hash[192:]:
        raise CryptoError("RSA block is neither legacy nor RSA_PAD encoded")
    return data_with_padding


def encrypt_tmp_aes(plain: bytes, server_nonce: int, new_nonce: int) -> bytes:
    """AES-IGE with the nonce-derived temporary key; `encrypt_ige` pads to 16 bytes."""
    from telethon import helpers

    key, iv = helpers.generate_key_data_from_nonce(server_nonce, new_nonce)
    return AES.encrypt_ige(sha1(plain).digest() + plain, key, iv)


def decrypt_tmp_aes(cipher: bytes, server_nonce: int, new_nonce: int) -> bytes:
    from telethon import helpers

    if len(cipher) % 16:
        raise CryptoError("tmp_aes ciphertext is not block aligned")
    key, iv = helpers.generate_key_data_from_nonce(server_nonce, new_nonce)
    return AES.decrypt_ige(cipher, key, iv)


# -- MTProto 2.0 message encryption, server direction --------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """A decrypted client message: the header fields plus the raw TL body."""

    salt: int
    session_id: int
    msg_id: int
    seq_no: int
    body: bytes


def decrypt_client_message(auth_key: AuthKey, data: bytes) -> Envelope:
    """Decrypt a client->server message (x = 0) and verify msg_key and the length fields."""
    msg_key = data[8:24]
    cipher = data[24:]
    if len(cipher) < 32 or len(cipher) % 16:
        raise CryptoError("encrypted payload has an invalid length")
    aes_key, aes_iv = MTProtoState._calc_key(auth_key.key, msg_key, True)
    plain = AES.decrypt_ige(cipher, aes_key, aes_iv)
    if sha256(auth_key.key[88:120] + plain).digest()[8:24] != msg_key:
        raise CryptoError("msg_key mismatch")
    salt, session_id, msg_id, seq_no, length = struct.unpack_from("<qqqii", plain)
    padding = len(plain) - 32 - length
    if length < 0 or length % 4 or not 12 <= padding <= 1024:
        raise CryptoError("message length or padding out of range")
    return Envelope(salt, session_id, msg_id, seq_no, plain[32 : 32 + length])


def encrypt_server_message(
    auth_key: AuthKey, salt: int, session_id: int, msg_id: int, seq_no: int, body: bytes
) -> bytes:
    """Encrypt a server->client message (x = 8), the mirror image of Telethon's client side."""
    data = struct.pack("<qqqii", salt, session_id, msg_id, seq_no, len(body)) + body
    padding = os.urandom(-(len(data) + 12) % 16 + 12)
    msg_key = sha256(auth_key.key[96:128] + data + padding).digest()[8:24]
    aes_key, aes_iv = MTProtoState._calc_key(auth_key.key, msg_key, False)
    return (
        struct.pack("<Q", auth_key.key_id)
        + msg_key
        + AES.encrypt_ige(data + padding, aes_key, aes_iv)
    )
