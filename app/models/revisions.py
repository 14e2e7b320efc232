"""Bump the "names" revision when a name a feed shows changes (patients, centers, chairs).

Infusions, taper steps and suggestions change all day; feeds read their own rows' versions
for that (app.services.feeds.fingerprint), so a busy clinic has no single row every write
must update. Names change rarely, and have no version of their own.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.models.center import Center, Chair
from app.models.patient import Patient
from app.models.system import ContentRevision

#: Rows whose names or places feeds show and that carry no version of their own.
_WATCHED = (Patient, Center, Chair)


NAMES = "names"


@sa.event.listens_for(so.Session, "after_flush")
def _bump_feed_revision(session: so.Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, _WATCHED) for obj in changed):
        session.connection().execute(
            sa.update(ContentRevision)
            .where(ContentRevision.name == NAMES)
            .values(revision=ContentRevision.revision + 1)
        )
