"""Password, token and broker-password hashing: pure functions, no I/O.

Passwords are argon2id hashes (argon2-cffi defaults). Session cookies and API tokens are
random 256-bit secrets; only their SHA-256 is stored, which is enough for secrets that
cannot be guessed and keeps each request's lookup cheap. Broker passwords use mosquitto's
own format (``$7$``: PBKDF2-SHA512), so the password file can be generated from the model
without the plaintext ever being stored.

A new password must pass ``check_password``: zxcvbn (Dropbox's estimator; its lists of common
passwords, names and words ship inside the package, so nothing is looked up over the network)
must rate it at least ``MIN_PASSWORD_SCORE`` of 4, with the username and our own words counted
as known to an attacker. That refuses ``12345678``, ``password`` and the username, and says why.
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
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_SCORE = 3  # zxcvbn: "safely unguessable", its authors' threshold for a password an attacker cannot guess online
_ZXCVBN_MAX = 72  # zxcvbn's own limit; beyond it a password is long enough and the rest is not scored
_OUR_WORDS = ("smartfactory", "smart", "factory", "centre", "center", "admin")


class WeakPassword(ValueError):
    """A password the policy refuses: ``str()`` says what is wrong and how to fix it."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem}: {fix}")


def check_password(password: str, username: str | None = None, other_inputs: tuple[str, ...] = ()) -> None:
    """Raise ``WeakPassword`` unless ``password`` is long enough and not common, breached or guessable."""
    fix = ("choose a longer passphrase of three or four unrelated words, e.g. 'lathe-morning-cactus-47'; "
           "avoid your username, the company's name and keyboard or number sequences")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password has {len(password)} characters, fewer than {MIN_PASSWORD_LENGTH}", fix)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"the password is longer than {MAX_PASSWORD_LENGTH} characters", "choose a shorter one")
    import zxcvbn  # imported here: loading its word lists takes a moment that only a password change needs

    inputs = [w for w in (username, *(username or "").replace("_", "-").split("-"), *other_inputs, *_OUR_WORDS) if w]
    if username and password.lower() == username.lower():
        raise WeakPassword("the password is the username", fix)
    result = zxcvbn.zxcvbn(password[:_ZXCVBN_MAX], user_inputs=inputs)
    if result["score"] < MIN_PASSWORD_SCORE:
        feedback = result.get("feedback") or {}
        warning = (feedback.get("warning") or "").rstrip(".")
        if not warning and any(m.get("dictionary_name") == "user_inputs" for m in result.get("sequence", [])):
            warning = "it is built from the username or the company's name"
        problem = "the password is too easy to guess" + (f" ({warning})" if warning else "")
        raise WeakPassword(problem, fix)
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
