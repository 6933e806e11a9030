"""Password, token and broker-password hashing: pure functions, no I/O.

Passwords are argon2id hashes (argon2-cffi defaults). Session cookies and API tokens are
random 256-bit secrets; only their SHA-256 is stored, which is enough for secrets that
cannot be guessed and keeps each request's lookup cheap. Broker passwords use mosquitto's
own format (``$7$``: PBKDF2-SHA512), so the password file can be generated from the model
without the plaintext ever being stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()
TOKEN_PREFIX = "sf_"
MOSQUITTO_ITERATIONS = 101  # mosquitto_passwd's default for $7$


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("passwords need at least 8 characters")
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mosquitto_hash(password: str, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """The ``$7$<iterations>$<salt b64>$<hash b64>`` line mosquitto_passwd would write."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_verify(stored: str, password: str) -> bool:
    _, kind, iterations, salt, digest = stored.split("$")
    if kind != "7":
        return False
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations), dklen=64)
    return hmac.compare_digest(computed, base64.b64decode(digest))
