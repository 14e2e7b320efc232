"""What every commit does last: the therapy-integrity check, the change notices, then the
audit chain's links.

One listener, so the order is fixed: the check may still write (a physician's override and its
audit row), the notices are written for what the transaction finally did to appointments in
the next hours, and only then are the transaction's audit rows chained.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.services import audit, integrity, reminders


@sa.event.listens_for(so.Session, "before_commit")
def _before_commit(session: so.Session) -> None:
    if session.in_nested_transaction():
        return
    integrity.verify_commit(session)
    if session.info.get(reminders.SEEN):
        reminders.notify_changes(session, integrity.settings_of(session))
    audit.seal(session)
