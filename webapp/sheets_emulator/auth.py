"""Who is calling: service accounts the emulator issued (RSA keys made with ``cryptography``,
JWT-bearer grants verified against them), users' OAuth grants (codes, refresh tokens), and the
access tokens both get. RS256 is done by hand with ``cryptography``: no JWT library needed."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

PROJECT = "pixelmerge-emulator"
ACCESS_TOKEN_SECONDS = 3600
CODE_SECONDS = 600
CLOCK_SKEW = 300
GOOGLE_TOKEN_URIS = ("https://oauth2.googleapis.com/token",
                     "https://accounts.google.com/o/oauth2/token")
READ_SCOPES = frozenset({"https://www.googleapis.com/auth/spreadsheets",
                         "https://www.googleapis.com/auth/spreadsheets.readonly",
                         "https://www.googleapis.com/auth/drive",
                         "https://www.googleapis.com/auth/drive.readonly",
                         "https://www.googleapis.com/auth/drive.file"})
WRITE_SCOPES = frozenset({"https://www.googleapis.com/auth/spreadsheets",
                          "https://www.googleapis.com/auth/drive",
                          "https://www.googleapis.com/auth/drive.file"})


class JWTError(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _load_key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def sign_jwt(claims: dict[str, Any], private_key_pem: str, kid: str) -> str:
    header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
    signing_input = ".".join(b64url(json.dumps(part, separators=(",", ":")).encode())
                             for part in (header, claims))
    signature = _load_key(private_key_pem).sign(signing_input.encode(), padding.PKCS1v15(),
                                                hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signed bytes and signature of a compact JWT, unverified."""
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except ValueError as exc:
        raise JWTError("malformed") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("malformed")
    return header, claims, f"{header_b64}.{claims_b64}".encode(), signature


def verify_rs256(signed: bytes, signature: bytes, private_key_pem: str) -> None:
    try:
        _load_key(private_key_pem).public_key().verify(signature, signed, padding.PKCS1v15(),
                                                       hashes.SHA256())
    except InvalidSignature as exc:
        raise JWTError("Invalid JWT Signature.") from exc


def jwk(private_key_pem: str, kid: str) -> dict[str, str]:
    numbers = _load_key(private_key_pem).public_key().public_numbers()

    def encode(number: int) -> str:
        return b64url(number.to_bytes((number.bit_length() + 7) // 8, "big"))

    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": encode(numbers.n),
            "e": encode(numbers.e)}


def subject(email: str) -> str:
    """A stable 21-digit ``sub`` for an email, like Google's account ids."""
    return "1" + str(int(hashlib.sha256(email.lower().encode()).hexdigest(), 16))[:20]


@dataclass
class ServiceAccount:
    name: str
    private_key_id: str
    private_key: str
    client_id: str

    @property
    def client_email(self) -> str:
        return service_account_email(self.name)

    def key_file(self, token_uri: str) -> dict[str, str]:
        """The JSON key, as Google's console downloads it, aimed at the emulator."""
        return {"type": "service_account", "project_id": PROJECT,
                "private_key_id": self.private_key_id, "private_key": self.private_key,
                "client_email": self.client_email, "client_id": self.client_id,
                "auth_uri": token_uri.rsplit("/", 1)[0] + "/o/oauth2/v2/auth",
                "token_uri": token_uri, "universe_domain": "googleapis.com"}


def service_account_email(name: str) -> str:
    return f"{name}@{PROJECT}.iam.gserviceaccount.com"


def new_service_account(name: str) -> ServiceAccount:
    return ServiceAccount(name, secrets.token_hex(20), new_private_key_pem(),
                          str(100000000000000000000 + secrets.randbelow(10 ** 20)))


@dataclass
class AccessToken:
    principal: str
    scopes: list[str]
    expires_at: float
    grant: str | None = None  # the user's grant it came from; None for service accounts


@dataclass
class Grant:
    """A user's consent to a client: revoking it ends its refresh and access tokens."""

    email: str
    client_id: str
    scope: str
    refresh_token: str | None


@dataclass
class Code:
    email: str
    client_id: str
    redirect_uri: str
    scope: str
    offline: bool
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass
class AuthState:
    service_accounts: list[ServiceAccount] = field(default_factory=list)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    issuer_key: str = ""  # signs ID tokens
    issuer_kid: str = ""

    def ensure_keys(self) -> None:
        if not self.service_accounts:
            self.service_accounts.append(new_service_account("pixelmerge"))
        if not self.issuer_key:
            self.issuer_key, self.issuer_kid = new_private_key_pem(), secrets.token_hex(20)

    def clear_tokens(self) -> None:
        """Forget tokens and grants; service accounts and the issuer key stay."""
        self.access_tokens.clear()
        self.grants.clear()
        self.codes.clear()

    def service_account(self, email_or_kid: str) -> ServiceAccount | None:
        return next((account for account in self.service_accounts
                     if email_or_kid in (account.client_email, account.private_key_id)), None)

    def issue(self, principal: str, scopes: list[str], grant: str | None = None) -> str:
        token = "ya29." + secrets.token_urlsafe(48)
        self.access_tokens[token] = AccessToken(principal, scopes,
                                                time.time() + ACCESS_TOKEN_SECONDS, grant)
        return token

    def lookup(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        if found is None or found.expires_at < time.time():
            return None
        return found

    def revoke_grant(self, grant_id: str) -> None:
        self.grants.pop(grant_id, None)
        for token in [t for t, a in self.access_tokens.items() if a.grant == grant_id]:
            del self.access_tokens[token]

    def revoke_user(self, email: str) -> int:
        grant_ids = [g for g, grant in self.grants.items()
                     if grant.email.lower() == email.lower()]
        for grant_id in grant_ids:
            self.revoke_grant(grant_id)
        return len(grant_ids)

    def grant_of_refresh_token(self, refresh_token: str) -> str | None:
        return next((g for g, grant in self.grants.items()
                     if grant.refresh_token == refresh_token), None)

    def to_json(self) -> dict[str, Any]:
        return {"serviceAccounts": [asdict(a) for a in self.service_accounts],
                "accessTokens": {t: asdict(a) for t, a in self.access_tokens.items()},
                "grants": {g: asdict(grant) for g, grant in self.grants.items()},
                "issuerKey": self.issuer_key, "issuerKid": self.issuer_kid}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuthState:
        return cls([ServiceAccount(**a) for a in data.get("serviceAccounts", [])],
                   {t: AccessToken(**a) for t, a in data.get("accessTokens", {}).items()},
                   {g: Grant(**grant) for g, grant in data.get("grants", {}).items()},
                   {}, data.get("issuerKey", ""), data.get("issuerKid", ""))


def verify_assertion(auth: AuthState, assertion: str, token_uri: str) -> tuple[str, list[str]]:
    """A service account's JWT-bearer assertion -> (its email, the scopes it asks for)."""
    header, claims, signed, signature = jwt_parts(assertion)
    account = auth.service_account(str(header.get("kid") or claims.get("iss", "")))
    if account is None or header.get("alg") != "RS256":
        raise JWTError("Invalid JWT Signature.")
    verify_rs256(signed, signature, account.private_key)
    if claims.get("iss") != account.client_email:
        raise JWTError("Invalid JWT Signature.")
    # google-auth always names Google's token endpoint as the audience, whatever token_uri is
    if claims.get("aud") not in (token_uri, *GOOGLE_TOKEN_URIS):
        raise JWTError(f"Invalid JWT: Failed audience check. The right audience is {token_uri}")
    if not _in_time(claims, time.time()):
        raise JWTError("Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                       "reasonable timeframe. Check your iat and exp values in the JWT claim.")
    return account.client_email, str(claims.get("scope", "")).split()


def _in_time(claims: dict[str, Any], now: float) -> bool:
    try:
        issued, expires = float(claims["iat"]), float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        return False
    return issued - CLOCK_SKEW <= now <= expires + CLOCK_SKEW and expires - issued <= 3600
