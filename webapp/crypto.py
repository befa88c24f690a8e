"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) keyed by ``ENCRYPTION_KEY``."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    return Fernet(current_app.config["ENCRYPTION_KEY"].encode())


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise RuntimeError("a stored secret cannot be decrypted: is ENCRYPTION_KEY the key "
                           "it was encrypted with?") from None


def new_key() -> str:
    return Fernet.generate_key().decode()
