"""Server half of Telegram's SRP-2048 2FA check (account.getPassword / auth.checkPassword).

Why real SRP rather than a shortcut: the daemon signs in with Telethon's
`sign_in(password=...)`, which computes A and M1 itself; only a server that really verifies
M1 can tell a right password from a wrong one. The password-hash KDF is Telethon's own
`compute_hash`, so the verifier matches whatever the installed client derives.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from hashlib import sha256

from telethon import password as tpw
from telethon.tl import types

from .crypto import DH_G, DH_PRIME, DH_PRIME_BYTES

_P256 = DH_PRIME_BYTES
_G256 = DH_G.to_bytes(256, "big")
_K = int.from_bytes(sha256(_P256 + _G256).digest(), "big")


def _h(*parts: bytes) -> bytes:
    digest = sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def _pad256(value: int) -> bytes:
    return value.to_bytes(256, "big")


@dataclass
class Challenge:
    """One account.getPassword answer: the server secret b and public B, keyed by srp_id."""

    srp_id: int
    b: int
    big_b: int


@dataclass
class PasswordVerifier:
    """What the server stores for a 2FA password: the salts and v = g^x mod p."""

    algo: types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow
    v: int
    hint: str | None = None
    challenges: dict[int, Challenge] = field(default_factory=dict)

    @classmethod
    def create(cls, password: str, hint: str | None = None) -> PasswordVerifier:
        algo = types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=os.urandom(40), salt2=os.urandom(16), g=DH_G, p=DH_PRIME_BYTES
        )
        x = int.from_bytes(tpw.compute_hash(algo, password), "big")
        return cls(algo=algo, v=pow(DH_G, x, DH_PRIME), hint=hint)

    def new_challenge(self) -> Challenge:
        while True:
            b = secrets.randbits(320)
            g_b = pow(DH_G, b, DH_PRIME)
            big_b = (_K * self.v + g_b) % DH_PRIME
            # The client rejects B unless B - k*v (= g^b) is a "good" large number.
            if tpw.is_good_mod_exp_first(g_b, DH_PRIME) and tpw.is_good_large(big_b, DH_PRIME):
                break
        challenge = Challenge(srp_id=secrets.randbits(63), b=b, big_b=big_b)
        self.challenges = {challenge.srp_id: challenge}  # only the latest one stays valid
        return challenge

    def account_password(self, challenge: Challenge) -> types.account.Password:
        return types.account.Password(
            has_password=True,
            current_algo=self.algo,
            srp_B=_pad256(challenge.big_b),
            srp_id=challenge.srp_id,
            hint=self.hint,
            new_algo=types.PasswordKdfAlgoUnknown(),
            new_secure_algo=types.SecurePasswordKdfAlgoUnknown(),
            secure_random=os.urandom(32),
        )

    def check(self, srp_id: int, a_bytes: bytes, m1: bytes) -> bool:
        """Verify the client's proof M1 for the challenge `srp_id` (single use)."""
        challenge = self.challenges.pop(srp_id, None)
        if challenge is None:
            raise KeyError(srp_id)
        big_a = int.from_bytes(a_bytes, "big")
        if not 0 < big_a < DH_PRIME:
            return False
        a256, b256 = _pad256(big_a), _pad256(challenge.big_b)
        u = int.from_bytes(_h(a256, b256), "big")
        s = pow(big_a * pow(self.v, u, DH_PRIME), challenge.b, DH_PRIME)
        k = _h(_pad256(s))
        expected = _h(
            bytes(x ^ y for x, y in zip(_h(_P256), _h(_G256), strict=True)),
            _h(self.algo.salt1),
            _h(self.algo.salt2),
            a256,
            b256,
            k,
        )
        return secrets.compare_digest(expected, m1)


def no_password() -> types.account.Password:
    """account.getPassword for an account without 2FA."""
    return types.account.Password(
        has_password=False,
        new_algo=types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=os.urandom(8), salt2=os.urandom(16), g=DH_G, p=DH_PRIME_BYTES
        ),
        new_secure_algo=types.SecurePasswordKdfAlgoSHA512(salt=os.urandom(8)),
        secure_random=os.urandom(32),
    )
