"""SessionCipher (AES-GCM, HKDF-derived key, account-bound) and the key file."""

from __future__ import annotations

import base64
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.db.conftest import make_settings
from twin.db.crypto import VERSION, SessionCipher, SessionDecryptError, load_or_create_key
from twin.errors import ConfigError

PLAINTEXT = b"\x02" + bytes(range(256)) + b"149.154.167.51:443"


def test_round_trip_and_layout() -> None:
    cipher = SessionCipher("passphrase")
    blob = cipher.encrypt(PLAINTEXT, account="default")
    assert blob[0] == VERSION
    assert len(blob) == 1 + 12 + len(PLAINTEXT) + 16
    assert PLAINTEXT not in blob
    assert cipher.decrypt(blob, account="default") == PLAINTEXT


def test_fresh_nonce_every_time() -> None:
    cipher = SessionCipher(b"k")
    first, second = (cipher.encrypt(PLAINTEXT, account="a") for _ in range(2))
    assert first[1:13] != second[1:13]
    assert first != second


def test_same_secret_same_key() -> None:
    blob = SessionCipher("s3cret").encrypt(PLAINTEXT, account="a")
    assert SessionCipher(b"s3cret").decrypt(blob, account="a") == PLAINTEXT


def test_wrong_key_is_a_domain_error() -> None:
    blob = SessionCipher("right").encrypt(PLAINTEXT, account="a")
    with pytest.raises(SessionDecryptError, match="secret key"):
        SessionCipher("wrong").decrypt(blob, account="a")


def test_other_account_cannot_decrypt() -> None:
    cipher = SessionCipher("k")
    blob = cipher.encrypt(PLAINTEXT, account="alice")
    with pytest.raises(SessionDecryptError):
        cipher.decrypt(blob, account="bob")


@pytest.mark.parametrize("position", [0, 1, 12, 13, -1])
def test_tampering_is_detected(position: int) -> None:
    cipher = SessionCipher("k")
    blob = bytearray(cipher.encrypt(PLAINTEXT, account="a"))
    blob[position] ^= 0x01
    with pytest.raises(SessionDecryptError):
        cipher.decrypt(bytes(blob), account="a")


def test_truncated_blob() -> None:
    with pytest.raises(SessionDecryptError, match="truncated"):
        SessionCipher("k").decrypt(b"\x01" + b"\x00" * 20, account="a")


def test_empty_secret_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SessionCipher("")


def test_repr_hides_the_secret() -> None:
    assert "hunter2" not in repr(SessionCipher("hunter2"))


@given(data=st.binary(max_size=2048), account=st.text(min_size=1, max_size=64))
def test_round_trip_property(data: bytes, account: str) -> None:
    cipher = SessionCipher("property")
    assert cipher.decrypt(cipher.encrypt(data, account=account), account=account) == data


def test_configured_secret_wins(tmp_path) -> None:
    settings = make_settings("sqlite+aiosqlite://", tmp_path, secret="from-env")
    assert load_or_create_key(settings) == (b"from-env", False)
    assert not settings.security.key_file.exists()


def test_key_file_created_once_with_mode_0600(tmp_path) -> None:
    settings = make_settings("sqlite+aiosqlite://", tmp_path, secret=None)
    path = settings.security.key_file
    assert not path.parent.exists()

    key, created = load_or_create_key(settings)
    assert created is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert path.read_bytes().strip() == key

    again, created_again = load_or_create_key(settings)
    assert (again, created_again) == (key, False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_empty_key_file_is_a_config_error(tmp_path) -> None:
    settings = make_settings("sqlite+aiosqlite://", tmp_path, secret=None)
    settings.security.key_file.parent.mkdir(parents=True)
    settings.security.key_file.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        load_or_create_key(settings)
