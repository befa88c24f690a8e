"""Configuration: defaults, then the environment (SPEC 12), then ``test_config``.

Environment variables keep the names the spec gives (``DATABASE_URL``, ``REDIS_URL`` …); every
other setting can be given as ``PIXELMERGE_<NAME>``. Secrets that a single-machine install needs
but nobody set (``SECRET_KEY``, ``ENCRYPTION_KEY``) are generated once and kept in the data
folder, so ``make run`` works out of the box and restarts keep sessions and secrets readable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_NAMES = (
    "DATABASE_URL", "REDIS_URL", "STORAGE_URL", "PUBLIC_URL", "SECRET_KEY", "ENCRYPTION_KEY",
    "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "GOOGLE_SERVICE_ACCOUNT_FILE",
    "GOOGLE_SHEETS_API_URL", "OUTBOUND_ALLOWLIST", "S3_ENDPOINT_URL",
)


def defaults(data_dir: Path) -> dict[str, Any]:
    return {
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'pixelmerge.db'}",
        "REDIS_URL": None,
        "STORAGE_URL": f"file://{data_dir / 'storage'}",
        "S3_ENDPOINT_URL": os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
            "AWS_ENDPOINT_URL"),
        "PUBLIC_URL": "http://localhost:8000",
        "SECRET_KEY": None,
        "ENCRYPTION_KEY": None,
        "GOOGLE_SHEETS_API_URL": "https://sheets.googleapis.com",
        "GOOGLE_SERVICE_ACCOUNT_FILE": None,
        "GOOGLE_CLIENT_ID": None,
        "GOOGLE_CLIENT_SECRET": None,
        # where Authlib finds Google's OAuth endpoints (the emulator serves its own)
        "GOOGLE_OPENID_CONFIG_URL": "https://accounts.google.com/.well-known/openid-configuration",
        # Sheets syncs: bounded back-off on 429 and 5xx, rows per sync, writes per sync
        "SHEETS_RETRIES": 5,
        "SHEETS_BACKOFF": 1.0,  # seconds before the first retry; doubles each time
        "SHEETS_TIMEOUT": 30.0,
        "MAX_SYNC_ROWS": 50_000,
        "SYNC_FLUSHES": 5,  # a large sync writes its outputs back in about this many rounds
        "OUTBOUND_ALLOWLIST": "",
        # limits (SPEC 12)
        "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,
        "MAX_CANVAS": 8000,
        "MAX_LAYERS": 200,
        "MAX_IMAGE_BYTES": 20 * 1024 * 1024,
        "MAX_IMAGE_PIXELS": 40_000_000,
        "MAX_BATCH_ITEMS": 10_000,
        "RENDER_TIMEOUT": 30,
        "SYNC_TIMEOUT": 10.0,  # a synchronous render past this answers 202 (0: wait for it)
        "JOB_STALE_SECONDS": None,  # default RENDER_TIMEOUT + 60: a started job older is orphaned
        # seconds between webhook attempts: 27.5 hours in all
        "WEBHOOK_RETRY_INTERVALS": "10,60,300,900,1800,3600,7200,14400,28800,43200",
        "OUTBOUND_TIMEOUT": 10.0,
        "MAX_SOURCE_BYTES": 5 * 1024 * 1024,  # a JSON source's answer
        "MAX_ASSET_BYTES": 20 * 1024 * 1024,
        # metering
        "MONTHLY_QUOTA": 10_000,  # renders per workspace per month; 0 means unlimited
        "RATE_LIMIT": "600 per minute",  # per API key
        "PUBLIC_RATE_LIMIT": "120 per minute",  # per client address on /u/
        # the web UI: password-reset mail (printed in the log when SMTP_HOST is unset)
        "SMTP_HOST": None,
        "SMTP_PORT": 587,
        "SMTP_USER": None,
        "SMTP_PASSWORD": None,
        "SMTP_FROM": "Pixelmerge <pixelmerge@localhost>",
        "SMTP_STARTTLS": True,
        "PASSWORD_RESET_SECONDS": 3600,  # how long a reset link works
        "UI_MAX_TEMPLATE_BYTES": 2 * 1024 * 1024,  # an uploaded .json or .html template
        # CSRF: checked by the UI blueprints, not app-wide (the API and hooks take no cookies)
        "WTF_CSRF_CHECK_DEFAULT": False,
        "WTF_CSRF_TIME_LIMIT": None,  # a form left open all day still posts (session-bound)
        "SESSION_COOKIE_SAMESITE": "Lax",
    }


_INTS = {"MAX_CONTENT_LENGTH", "MAX_CANVAS", "MAX_LAYERS", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS",
         "MAX_SOURCE_BYTES", "MAX_BATCH_ITEMS", "RENDER_TIMEOUT", "MONTHLY_QUOTA",
         "MAX_ASSET_BYTES", "SHEETS_RETRIES", "MAX_SYNC_ROWS", "SYNC_FLUSHES", "SMTP_PORT",
         "PASSWORD_RESET_SECONDS", "UI_MAX_TEMPLATE_BYTES"}
_FLOATS = {"OUTBOUND_TIMEOUT", "JOB_STALE_SECONDS", "SYNC_TIMEOUT", "SHEETS_BACKOFF",
           "SHEETS_TIMEOUT"}


def from_environment(environ: os._Environ | dict, known: dict[str, Any]) -> dict[str, Any]:
    """The spec's variable names as they are, and ``PIXELMERGE_<NAME>`` for every setting."""
    found: dict[str, Any] = {}
    for name in ENV_NAMES:
        if environ.get(name):
            found[name] = environ[name]
    for name in known:
        value = environ.get(f"PIXELMERGE_{name}")
        if value is not None:
            found[name] = _typed(name, value)
    return found


_BOOLS = {"SMTP_STARTTLS"}


def _typed(name: str, value: str) -> Any:
    if name in _BOOLS:
        return value.strip().lower() in ("1", "true", "yes", "on")
    if name in _INTS:
        return int(value)
    if name in _FLOATS:
        return float(value)
    return value


def data_dir(environ: os._Environ | dict) -> Path:
    return Path(environ.get("PIXELMERGE_DATA") or Path.cwd() / "var").resolve()


def ensure_secret(config: dict[str, Any], name: str, make) -> None:
    """Use the configured secret, else the one kept in the data folder, else make one."""
    if config.get(name):
        return
    path = Path(config["DATA_DIR"]) / name.lower()
    if path.exists():
        config[name] = path.read_text().strip()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    config[name] = value
