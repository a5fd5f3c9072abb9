"""Encryption of Telegram session data at rest (AES-256-GCM).

The auth key stored for an account is as good as its password, so it never reaches the database
in clear. The AES key is derived with HKDF-SHA256 from `[security] secret_key` (any passphrase
works) or from a random key file created on first start. Blob layout:

    version (1 byte) | nonce (12 bytes) | ciphertext + GCM tag (16 bytes)

The associated data binds each blob to its version and account name, so a blob copied to
another account's row does not decrypt.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from twin.errors import ConfigError, TwinError

if TYPE_CHECKING:
    from twin.config import Settings

log = logging.getLogger("twin.db.crypto")

VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HKDF_INFO = b"twin/session-data/aes-256-gcm/v1"
_AAD_PREFIX = b"twin/session-data:"


class SessionDecryptError(TwinError):
    """Stored session data cannot be decrypted: wrong key, tampered data or another account's."""


class SessionCipher:
    """Encrypts and decrypts session blobs for one secret key."""

    __slots__ = ("_aead",)

    def __init__(self, secret: bytes | str) -> None:
        material = secret.encode() if isinstance(secret, str) else bytes(secret)
        if not material:
            raise ValueError("the session encryption secret is empty")
        self._aead = AESGCM(derive_key(material, _HKDF_INFO))

    def __repr__(self) -> str:
        return "SessionCipher(<secret>)"

    @staticmethod
    def _aad(version: int, account: str) -> bytes:
        return _AAD_PREFIX + bytes([version]) + account.encode()

    def encrypt(self, plaintext: bytes, *, account: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, bytes(plaintext), self._aad(VERSION, account))
        return bytes([VERSION]) + nonce + sealed

    def decrypt(self, blob: bytes, *, account: str) -> bytes:
        blob = bytes(blob)
        if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise SessionDecryptError(f"session data of account '{account}' is truncated")
        version = blob[0]
        if version != VERSION:
            raise SessionDecryptError(
                f"session data of account '{account}' has unknown format version {version}"
            )
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, sealed, self._aad(version, account))
        except InvalidTag:
            raise SessionDecryptError(
                f"cannot decrypt the session data of account '{account}': the secret key "
                "(security.secret_key or the key file) differs from the one it was saved with, "
                "or the data was altered; restore the key or log in again"
            ) from None


def derive_key(secret: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one `purpose` (an HKDF info label), from the secret key: the session
    cipher's key and, say, the cluster's request signatures never share a key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


def load_or_create_key(settings: Settings) -> tuple[bytes, bool]:
    """Return the secret for `SessionCipher` and whether a new key file was just created.

    `security.secret_key` (environment only) wins. Otherwise `security.key_file` is read, or
    created with 32 random bytes (urlsafe base64 text) readable by the owner only.
    """
    configured = settings.security.secret_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode(), False
    path = Path(settings.security.key_file)
    try:
        return _read_key_file(path), False
    except FileNotFoundError:
        pass
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return _read_key_file(path), False
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(key + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key, True


def _read_key_file(path: Path) -> bytes:
    try:
        data = path.read_bytes().strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError([f"security.key_file: cannot read {path}: {exc.strerror}"]) from None
    if not data:
        raise ConfigError([f"security.key_file: {path} is empty"])
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "secret key file %s is readable by other users (mode %o); run chmod 600", path, mode
        )
    return data
