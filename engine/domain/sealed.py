"""Secrets kept at rest (a provider's API private key), sealed with Fernet.

The Fernet key is derived from LIAISON_SECRET_KEY with HKDF, so the database alone never
reveals a secret. Rotating LIAISON_SECRET_KEY needs `liaison reencrypt-secrets`, which opens
each sealed value with the old key and seals it again with the new one.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.exceptions import LiaisonError

PURPOSE = b"liaison: provider secrets at rest"


class SealBroken(LiaisonError):
    """A sealed value does not open with this key (the secret key changed, or it was altered)."""

    code = "SecretUnreadable"


@lru_cache(maxsize=8)  # the derivation is per key, not per value
def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise LiaisonError("no secret key: set LIAISON_SECRET_KEY")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=PURPOSE).derive(secret_key.encode("utf-8"))
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(secret_key: str, plain: str) -> str:
    """The value encrypted and authenticated; a new random token on every call."""
    return _fernet(secret_key).encrypt(plain.encode("utf-8")).decode("ascii")


def unseal(secret_key: str, token: str) -> str:
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise SealBroken("a stored secret cannot be decrypted with the current "
                         "LIAISON_SECRET_KEY (was the key changed? run `liaison "
                         "reencrypt-secrets` with LIAISON_OLD_SECRET_KEY set)") from None


def reseal(old_key: str, new_key: str, token: str) -> str:
    """Opens with the old key and seals with the new; a value already under the new key
    passes unchanged (a re-run after an interrupted rotation is harmless)."""
    try:
        return seal(new_key, unseal(old_key, token))
    except SealBroken:
        unseal(new_key, token)  # raises if it opens with neither key
        return token
