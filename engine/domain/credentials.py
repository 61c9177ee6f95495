"""Secrets derived from the server's secret key.

Provider passwords must be recoverable by the server for WS-Security PasswordDigest, which
hashes the plain password with a nonce. So a provider's password is *derived*:
HMAC(secret key, username + per-provider salt). The database keeps only the salt and a hash,
so a copied database alone reveals no password; regenerating draws a new salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_salt() -> str:
    return secrets.token_hex(16)


def provider_password(secret_key: str, username: str, salt: str) -> str:
    digest = hmac.new(secret_key.encode(), f"provider:{username}:{salt}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:28]


def password_fingerprint(password: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{password}".encode()).hexdigest()


def task_token(secret_key: str, task_id: int) -> str:
    """The `Token:` tag of outbound mail: proves a reply concerns a task we wrote about."""
    return hmac.new(secret_key.encode(), f"task:{task_id}".encode(), hashlib.sha256).hexdigest()[:32]


def check_task_token(secret_key: str, task_id: int, candidate: str) -> bool:
    return hmac.compare_digest(task_token(secret_key, task_id), (candidate or "").strip().lower())


def new_api_token() -> str:
    return "lsn_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
