"""Encryption at rest for env var values, with a key derived from SECRET_KEY.

Fernet (AES-128-CBC + HMAC) from `cryptography`; rotating SECRET_KEY makes stored values
unreadable, which decrypt() reports instead of returning garbage.
"""
import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class UndecryptableValue(Exception):
    """The value was encrypted with another SECRET_KEY."""


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(f"switchyard env vars:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(value: str) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet(settings.SECRET_KEY).decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableValue("this value was encrypted with another SECRET_KEY; set it again")
