"""Idempotency keys on the write API: a client's retry after a lost answer writes once.

The first request with a key claims it (committed before the work); its answer is stored when
it finishes; a retry with the same key and the same request gets that answer again. A key
reused for another request is refused; one still running answers 409. Answers are kept
24 hours; a server error frees the key for a retry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import utcnow
from app.models import IdempotentRequest
from app.services.context import unit_of_work
from app.services.errors import Conflict, InvalidInput

KEEP = dt.timedelta(hours=24)
MAX_KEY_LENGTH = 200


@dataclasses.dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    content_type: str


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def claim(
    session: so.Session, user_id: int, key: str, method: str, path: str, body: bytes
) -> tuple[str, Stored | None]:
    """Claim a key for this request; return its id and the stored answer of a finished retry."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key: 1 to {MAX_KEY_LENGTH} printable characters", field="Idempotency-Key"
        )
    key_id = _digest(user_id, key)
    wanted = _digest(method, path, hashlib.sha256(body).hexdigest())
    now = utcnow()
    with unit_of_work(session):
        session.execute(
            sa.delete(IdempotentRequest).where(IdempotentRequest.created_at < now - KEEP)
        )
        row = session.get(IdempotentRequest, key_id, with_for_update=True)
        if row is None:
            session.add(IdempotentRequest(key=key_id, request_hash=wanted, created_at=now))
            try:
                session.flush()
            except sa.exc.IntegrityError:
                session.rollback()
                raise Conflict(
                    "Idempotency-Key: a request with this key is still running",
                    field="Idempotency-Key",
                ) from None
            return key_id, None
        if row.request_hash != wanted:
            raise InvalidInput(
                "Idempotency-Key: this key was used for a different request",
                field="Idempotency-Key",
            )
        if row.status is None:
            raise Conflict(
                "Idempotency-Key: a request with this key is still running", field="Idempotency-Key"
            )
        return key_id, Stored(row.status, row.body or b"", row.content_type or "application/json")


def finish(session: so.Session, key_id: str, status: int, body: bytes, content_type: str) -> None:
    """Store the answer (or free the key after a server error, so the client may retry)."""
    with unit_of_work(session):
        row = session.get(IdempotentRequest, key_id, with_for_update=True)
        if row is None:
            return
        if status >= 500:
            session.delete(row)
            return
        row.status, row.body, row.content_type = status, body, content_type
