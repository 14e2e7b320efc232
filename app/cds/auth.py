"""Trusting CDS Clients (CDS Hooks 2.0): a signed JWT of a registered EHR on every call.

Keys come only from config.toml ([[cds.clients]] jwks): a token's `jku` is never fetched.
Only RS384 and ES384 are taken (the algorithms the spec recommends; never `none`, never a
shared secret). The time claims are checked on app.clock; a `jti` is good once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
import sqlalchemy.orm as so

from app.config import CdsClientSettings, CdsSettings, ConfigError, Settings
from app.services import cds as cds_service

#: The signing algorithms taken, by the key type that makes them.
ALGORITHMS = ("RS384", "ES384")
_ALGORITHM_OF_KEY = {("RSA", None): "RS384", ("EC", "P-384"): "ES384"}
#: A JWT's id or issuer longer than this is refused (the table's columns).
_MAX_CLAIM = 255


@dataclasses.dataclass(frozen=True)
class Client:
    """A registered EHR: its issuer, its name and its public keys by kid."""

    issuer: str
    name: str
    keys: Mapping[str, jwt.PyJWK]


class TokenRefused(Exception):
    """The call does not carry a valid JWT of a registered client (HTTP 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _key_set(client: CdsClientSettings, base: Path) -> Any:
    text = client.jwks.strip()
    if not text.startswith("{"):
        path = Path(text)
        path = path if path.is_absolute() else base / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read the JWK Set file {path}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc


def _public_key(jwk: Any) -> tuple[str, jwt.PyJWK]:
    if not isinstance(jwk, dict):
        raise ValueError("each key must be a JSON object")
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise ValueError("each key needs a kid (the JWT header names its key by it)")
    if "d" in jwk or jwk.get("kty") == "oct":
        raise ValueError(f"key {kid!r}: give the client's public key only")
    kty, crv = str(jwk.get("kty")), jwk.get("crv")
    algorithm = _ALGORITHM_OF_KEY.get((kty, str(crv) if kty == "EC" else None))
    if algorithm is None or jwk.get("alg", algorithm) != algorithm:
        raise ValueError(f"key {kid!r}: only RS384 (RSA) and ES384 (EC P-384) keys are taken")
    try:
        return kid, jwt.PyJWK(jwk, algorithm)
    except jwt.PyJWTError as exc:
        raise ValueError(f"key {kid!r}: {exc}") from exc


def load_clients(settings: Settings) -> dict[str, Client]:
    """Read every registered client's keys (at start: a bad key set stops the app, named)."""
    base = Path(settings.source).parent
    clients = {}
    for number, client in enumerate(settings.cds.clients):
        try:
            key_set = _key_set(client, base)
            if not isinstance(key_set, dict) or not isinstance(key_set.get("keys"), list):
                raise ValueError('a JWK Set is an object with a "keys" list')
            keys = dict(_public_key(jwk) for jwk in key_set["keys"])
            if len(keys) != len(key_set["keys"]):
                raise ValueError("each key's kid must be unique")
            if not keys:
                raise ValueError("the JWK Set has no key")
        except ValueError as exc:
            raise ConfigError(f"{settings.source}: cds.clients.{number}.jwks: {exc}") from exc
        clients[client.issuer] = Client(client.issuer, client.name, keys)
    return clients


def bearer_token(header: str) -> str:
    """The JWT of an `Authorization: Bearer <JWT>` header."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused("Send Authorization: Bearer <JWT> signed by a registered client.")
    return token.strip()


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRefused(f"The JWT's {name} must be a number of seconds since the epoch.")
    return float(value)


def _check_times(claims: Mapping[str, Any], rules: CdsSettings, now: dt.datetime) -> float:
    """Check exp, iat (and nbf) on the app's clock; return exp."""
    exp, iat, instant = _number(claims, "exp"), _number(claims, "iat"), now.timestamp()
    skew = rules.clock_skew_seconds
    if exp < instant - skew:
        raise TokenRefused("The JWT has expired.")
    if iat > instant + skew:
        raise TokenRefused("The JWT was issued in the future.")
    if exp - iat > rules.max_token_lifetime_seconds:
        raise TokenRefused(
            f"The JWT lives longer than {rules.max_token_lifetime_seconds} seconds (exp - iat)."
        )
    if "nbf" in claims and _number(claims, "nbf") > instant + skew:
        raise TokenRefused("The JWT is not valid yet (nbf).")
    return exp


def _client_and_key(token: str, clients: Mapping[str, Client]) -> tuple[Client, jwt.PyJWK]:
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"The bearer token is not a JWT: {exc}") from exc
    if header.get("alg") not in ALGORITHMS:
        raise TokenRefused("The JWT must be signed with RS384 or ES384.")
    issuer, kid = unverified.get("iss"), header.get("kid")
    client = clients.get(issuer) if isinstance(issuer, str) else None
    if client is None:
        raise TokenRefused("The JWT's iss is not a registered client.")
    key = client.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenRefused("The JWT's kid names no key of this client.")
    return client, key


def verify(
    session: so.Session,
    clients: Mapping[str, Client],
    rules: CdsSettings,
    token: str,
    audiences: Sequence[str],
    now: dt.datetime,
) -> Client:
    """Return the registered client whose JWT this is, after every check, and spend its jti."""
    client, key = _client_and_key(token, clients)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[key.algorithm_name],
            audience=list(audiences),
            issuer=client.issuer,
            options={
                "require": ["iss", "aud", "exp", "iat", "jti"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.InvalidAudienceError as exc:
        raise TokenRefused(f"The JWT's aud must be this endpoint: {audiences[0]}") from exc
    except jwt.PyJWTError as exc:
        raise TokenRefused(f"The JWT is not valid: {exc}") from exc
    exp = _check_times(claims, rules, now)
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_CLAIM:
        raise TokenRefused(f"The JWT's jti must be a string of 1 to {_MAX_CLAIM} characters.")
    expires_at = dt.datetime.fromtimestamp(exp + rules.clock_skew_seconds, dt.UTC)
    if not cds_service.claim_token_id(session, client.issuer, jti, expires_at, now):
        raise TokenRefused("The JWT was already used (its jti was seen before).")
    return client
