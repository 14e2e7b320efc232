"""Bump the "names" revision when a name a feed shows changes (patients, centers, chairs).

Infusions, taper steps and suggestions change all day; feeds read their own rows' versions
for that (app.services.feeds.fingerprint), so a busy clinic has no single row every write
must update. Names change rarely, and have no version of their own: only a change to one
of the columns below (or a row of these removed, or a center or chair added) bumps the
revision, so a patient's weight, allergies or e-mail, or an infusion added to a patient,
never make every feed in the clinic render again.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.models.center import Center, Chair
from app.models.patient import Patient
from app.models.system import ContentRevision

#: What feeds show of these rows (or filter and date by), per model: names, places, the
#: responsible physician (whose feed a patient's rows are in) and the home center (whose
#: midnight a physician's approvals follow).
_WATCHED: dict[type, tuple[str, ...]] = {
    Patient: ("given_name", "family_name", "treating_physician_id", "home_center_id"),
    Center: ("name", "address", "timezone"),
    Chair: ("name", "center_id"),
}


NAMES = "names"


def _shows_change(obj: object, added: bool) -> bool:
    columns = _WATCHED.get(type(obj))
    if columns is None:
        return False
    if added:
        # A new patient is in no feed until rows of its own (with versions) are; a new center
        # or chair is rare enough to bump for.
        return not isinstance(obj, Patient)
    state = sa.inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in columns)


@sa.event.listens_for(so.Session, "after_flush")
def _bump_feed_revision(session: so.Session, _context: Any) -> None:
    if (
        any(_shows_change(obj, added=True) for obj in session.new)
        or any(_shows_change(obj, added=False) for obj in session.dirty)
        or any(type(obj) in _WATCHED for obj in session.deleted)
    ):
        session.connection().execute(
            sa.update(ContentRevision)
            .where(ContentRevision.name == NAMES)
            .values(revision=ContentRevision.revision + 1)
        )
