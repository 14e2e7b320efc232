"""Bump the feeds' content revision in the same flush as any change a feed could show."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.models.assessment import Suggestion
from app.models.center import Center, Chair, Closure
from app.models.infusion import Infusion
from app.models.patient import Patient
from app.models.system import ContentRevision
from app.models.taper import TaperPlan, TaperStep

#: Rows whose changes feeds show (not Subscription: every fetch touches it).
_WATCHED = (Infusion, TaperStep, TaperPlan, Patient, Center, Chair, Closure, Suggestion)


@sa.event.listens_for(so.Session, "after_flush")
def _bump_feed_revision(session: so.Session, _context: Any) -> None:
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, _WATCHED) for obj in changed):
        session.connection().execute(
            sa.update(ContentRevision)
            .where(ContentRevision.name == "feeds")
            .values(revision=ContentRevision.revision + 1)
        )
