"""What the CDS Hooks service keeps about the EHRs that call it."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.db import Base, UTCDateTime


class CdsTokenId(Base):
    """A JWT id (`jti`) a registered EHR already used: a second use in its lifetime is refused.

    Rows past `expires_at` are purged: the token's own `exp` refuses it by then.
    """

    __tablename__ = "cds_token_ids"

    #: The `iss` of the client that signed the token (a [[cds.clients]] issuer).
    issuer: so.Mapped[str] = so.mapped_column(sa.String(255), primary_key=True)
    #: The token's `jti`, unique per issuer.
    jti: so.Mapped[str] = so.mapped_column(sa.String(255), primary_key=True)
    #: The token's `exp` plus the allowed clock skew.
    expires_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime(), index=True)
    used_at: so.Mapped[dt.datetime] = so.mapped_column(UTCDateTime())
