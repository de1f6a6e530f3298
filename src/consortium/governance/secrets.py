"""Passwords (argon2) and high-entropy tokens (random, shown once, stored as SHA-256)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token(kind: str) -> str:
    """A bearer secret such as ``csm_tok_<43 url-safe chars>``; 256 bits of randomness."""
    return f"csm_{kind}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """Tokens are random, so a fast hash suffices (no dictionary to attack)."""
    return hashlib.sha256(token.encode()).hexdigest()


def sign(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
