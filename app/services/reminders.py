"""Reminders: e-mails kept as rows, made exactly once and sent once by one periodic sweep.

Three kinds: `change_notice` (an appointment inside the next 48 hours was moved, cancelled or
added: to the patient, with consent, and the center's nurses), `day_before` (to the patient,
the day before a cycle starts) and `task` (a task on a user's worklist). What goes to a patient
says what their own calendar feed says: the day, the time and the place, never a drug or a dose.

Exactly once:
- Each row has a unique key (the change's transaction, the appointment and date, the task and
  recipient); jobs insert with ON CONFLICT DO NOTHING, so a second process or a re-run adds none.
- The sweep takes due rows in batches, one transaction each, locked FOR UPDATE SKIP LOCKED on
  PostgreSQL (a second sweep takes other rows or none); SQLite's writers queue (BEGIN IMMEDIATE).
  A row is stamped `sent_at` in the transaction that sent it. A process killed between the mail
  server's acceptance and the commit sends that batch again on the next run: at most one
  batch's messages may repeat after a kill, none otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import uuid
from collections.abc import Iterable, Sequence
from email.errors import MessageError
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.config import Settings
from app.db import utcnow
from app.domain import schedule
from app.models import Center, Infusion, InfusionStatus, Notice, Patient, Reminder, Role, User
from app.services import jobruns, labels, mail
from app.services.context import unit_of_work
from app.services.errors import Unavailable

log = logging.getLogger(__name__)

#: The kinds of e-mail a user may choose, with what the account page calls them.
USER_KINDS: dict[str, str] = {
    "change_notice": "Changes to appointments in the next hours (nurses)",
    "task": "Tasks put on my worklist (reviews, renewals, weight changes)",
}
#: What each role receives until the user chooses (User.mail_kinds).
DEFAULT_KINDS: dict[str, frozenset[str]] = {
    Role.NURSE: frozenset({"change_notice", "task"}),
    Role.PHYSICIAN: frozenset({"task"}),
    Role.ADMIN: frozenset(),
}
#: A message the server refused this many times is dropped (the admin sees it on the jobs page).
MAX_ATTEMPTS = 5


def wants(user: User, kind: str) -> bool:
    """Return whether a user receives a kind of e-mail (their choice, else their role's)."""
    chosen = user.mail_kinds
    if chosen is None:
        return kind in DEFAULT_KINDS.get(user.role, frozenset())
    return kind in chosen


def insert_once(session: so.Session, model: type[Any], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert rows whose unique key may already exist; return the ids of those inserted."""
    if not rows:
        return []
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(model).on_conflict_do_nothing(index_elements=["key"])
    # Executemany with RETURNING: one cached statement, sent in "insertmanyvalues" pages.
    return list(session.scalars(statement.returning(model.id), list(rows)))


def enqueue(session: so.Session, rows: Sequence[dict[str, Any]], now: dt.datetime) -> int:
    """Add reminder rows (key, kind, subject, body, recipient; due now unless said)."""
    blank = {"user_id": None, "patient_id": None, "infusion_id": None, "due_at": now}
    filled = [{**blank, "created_at": now, "attempts": 0, **row} for row in rows]
    return len(insert_once(session, Reminder, filled))


def staff_of(session: so.Session, role: str, center_id: int | None) -> list[User]:
    """Active users of a role at a center: those whose home it is, and those with no home."""
    statement = sa.select(User).where(User.role == role, User.active.is_(True))
    if center_id is not None:
        statement = statement.where(
            sa.or_(User.home_center_id == center_id, User.home_center_id.is_(None))
        )
    return list(session.scalars(statement.order_by(User.id)))


#: What a task e-mail's subject calls each kind of task.
TASK_SUBJECTS = {
    "review_measures": "record the course review's measures",
    "review_due": "course review due",
    "review_overdue": "course review overdue",
    "authorisation_renewal": "IVIG authorisation ending",
    "weight_change": "weight changed since the regimen was set",
}


def for_tasks(session: so.Session, notices: Iterable[Notice], now: dt.datetime, secret: str) -> int:
    """E-mail new tasks to their recipients who chose to receive tasks (one query per role
    and center among them; the sweep sends each recipient's tasks of a batch as one e-mail).
    E-mails name the patient as staff feeds do (app.services.labels)."""
    staff: dict[tuple[str, int | None], list[User]] = {}
    people: dict[int, list[User]] = {}  # held here: the identity map keeps only what is held
    rows = []
    for notice in notices:
        if notice.user_id is not None:
            if notice.user_id not in people:
                user = session.get(User, notice.user_id)
                people[notice.user_id] = [user] if user is not None else []
            users = people[notice.user_id]
        else:
            group = (notice.role or "", notice.center_id)
            if group not in staff:
                staff[group] = staff_of(session, *group)
            users = staff[group]
        who = labels.staff_label(notice.patient, secret)
        what = TASK_SUBJECTS.get(notice.kind, notice.kind.replace("_", " "))
        for user in users:
            if user.active and wants(user, "task"):
                rows.append(
                    {
                        "key": f"task:{notice.id}:user:{user.id}",
                        "kind": "task",
                        "user_id": user.id,
                        "infusion_id": notice.infusion_id,
                        "subject": f"Task for {who}: {what}"[:200],
                        "body": f"{who}: {notice.message}",
                    }
                )
    return enqueue(session, rows, now)


# --- change notices ---------------------------------------------------------------------------

SEEN = "appointment_changes"


@dataclasses.dataclass(frozen=True)
class _Slot:
    status: str
    planned_date: dt.date
    starts_at: dt.datetime | None
    center_id: int


def _slot_of(infusion: Infusion) -> _Slot:
    return _Slot(
        str(infusion.status), infusion.planned_date, infusion.starts_at, infusion.center_id
    )


def _committed_slot(infusion: Infusion) -> _Slot | None:
    """The infusion as the database had it before this transaction (None: a new row)."""
    state = sa.inspect(infusion)
    if state.pending or not state.has_identity:
        return None

    def old(name: str) -> Any:
        history = state.attrs[name].history
        if history.deleted:
            return history.deleted[0]
        return history.unchanged[0] if history.unchanged else getattr(infusion, name)

    return _Slot(str(old("status")), old("planned_date"), old("starts_at"), old("center_id"))


@sa.event.listens_for(so.Session, "before_flush")
def _remember(session: so.Session, _context: Any, _instances: Any) -> None:
    """Keep each infusion's slot as it was when this transaction first changed it."""
    seen: dict[int, tuple[Infusion, _Slot | None]] = session.info.setdefault(SEEN, {})
    for obj in (*session.new, *session.dirty):
        if isinstance(obj, Infusion) and id(obj) not in seen:
            seen[id(obj)] = (obj, _committed_slot(obj))


@sa.event.listens_for(so.Session, "after_transaction_end")
def _forget(session: so.Session, transaction: so.SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(SEEN, None)


_LIVE = frozenset({InfusionStatus.SCHEDULED, InfusionStatus.UNBOOKED})


@dataclasses.dataclass(frozen=True)
class Change:
    infusion: Infusion
    before: _Slot | None
    after: _Slot

    @property
    def what(self) -> str | None:
        was_live = self.before is not None and self.before.status in _LIVE
        is_live = self.after.status in _LIVE
        if is_live and not was_live:
            return "added" if self.before is None or self.before.status == "cancelled" else None
        if was_live and self.after.status == InfusionStatus.CANCELLED:
            return "cancelled"
        before, after = self.before, self.after
        if (
            was_live
            and is_live
            and before is not None
            and (before.planned_date, before.starts_at, before.center_id)
            != (after.planned_date, after.starts_at, after.center_id)
        ):
            return "moved"
        return None


def _within(slot: _Slot | None, now: dt.datetime, until: dt.datetime) -> bool:
    if slot is None:
        return False
    at = slot.starts_at or dt.datetime.combine(slot.planned_date, dt.time(12), tzinfo=dt.UTC)
    return now <= at <= until


def pending_changes(session: so.Session, settings: Settings, now: dt.datetime) -> list[Change]:
    """The appointments this transaction moved, cancelled or added inside the notice window."""
    seen: dict[int, tuple[Infusion, _Slot | None]] = session.info.get(SEEN, {})
    until = now + dt.timedelta(hours=settings.notices.change_hours)
    found = []
    for infusion, before in seen.values():
        if infusion not in session or sa.inspect(infusion).deleted:
            continue  # rolled back with a savepoint (a preview), or deleted
        change = Change(infusion, before, _slot_of(infusion))
        if change.what and (_within(before, now, until) or _within(change.after, now, until)):
            found.append(change)
    return found


def _when(slot: _Slot, zone: ZoneInfo) -> str:
    if slot.starts_at is None:
        return f"{slot.planned_date:%a %d %b %Y} (time to be confirmed)"
    return f"{slot.starts_at.astimezone(zone):%a %d %b %Y at %H:%M}"


def _place(center: Center) -> str:
    return center.name + (f", {center.address}" if center.address else "")


def _sentence(change: Change, centers: dict[int, Center]) -> str:
    """One appointment's change in the patient's words: the day, the time and the place."""
    after = centers[change.after.center_id]
    at_after = ZoneInfo(after.timezone)
    if change.what == "added":
        return f"New appointment: {_when(change.after, at_after)} at {_place(after)}."
    assert change.before is not None
    before = centers[change.before.center_id]
    at_before = ZoneInfo(before.timezone)
    if change.what == "cancelled":
        return (
            f"Cancelled: the appointment on {_when(change.before, at_before)} at {_place(before)}."
        )
    where = _place(after) if before.id == after.id else f"{_place(after)} (was {before.name})"
    return (
        f"Moved: the appointment on {_when(change.before, at_before)} is now "
        f"{_when(change.after, at_after)} at {where}."
    )


def notify_changes(session: so.Session, settings: Settings) -> int:
    """Before commit: turn this transaction's near changes into notices (one per recipient):
    to the patient (contact e-mail with consent), and to the nurses of every center the
    changed appointments were or now are at."""
    now = utcnow()
    changes = pending_changes(session, settings, now)
    if not changes:
        return 0
    by_patient: dict[int, list[Change]] = {}
    for change in changes:
        by_patient.setdefault(change.infusion.patient_id, []).append(change)
    ids = {c.after.center_id for c in changes} | {c.before.center_id for c in changes if c.before}
    centers = {c.id: c for c in session.scalars(sa.select(Center).where(Center.id.in_(ids)))}
    txid = uuid.uuid4().hex[:16]
    rows: list[dict[str, Any]] = []
    notices: list[dict[str, Any]] = []
    for patient_id, items in by_patient.items():
        items.sort(key=lambda c: (c.after.planned_date, c.infusion.day_number))
        patient = session.get(Patient, patient_id)
        if patient is None:
            continue
        lines = [_sentence(c, centers) for c in items]
        first = items[0].infusion.id
        # The key names the appointments, so a later notice knows what it replaces.
        named = "-".join(str(c.infusion.id) for c in items) if len(items) <= 6 else "many"
        about = f"{txid}:{named}"
        if patient.contact_email and patient.contact_consent_at is not None:
            rows.append(
                {
                    "key": f"change:{about}:patient:{patient_id}",
                    "kind": "change_notice",
                    "patient_id": patient_id,
                    "infusion_id": first,
                    "subject": f"Your infusion appointment changed ({settings.app.clinic_name})",
                    "body": mail.paragraphs(
                        f"Dear {patient.given_name},",
                        *lines,
                        "Your calendar may take a day to show this. Call the center if the new "
                        "time does not suit you.",
                    ),
                }
            )
        who = labels.staff_label(patient, settings.app.secret_key)
        staff_text = f"{who}: " + " ".join(lines)
        touched = sorted(
            {c.after.center_id for c in items} | {c.before.center_id for c in items if c.before}
        )
        for center_id in touched:
            center = centers[center_id]
            notices.append(
                {
                    "key": f"change:{about}:center:{center_id}:{patient_id}",
                    "kind": "change_notice",
                    "role": Role.NURSE.value,
                    "center_id": center_id,
                    "patient_id": patient_id,
                    "infusion_id": first,
                    "message": staff_text,
                    "created_at": now,
                }
            )
            for nurse in staff_of(session, Role.NURSE, center_id):
                if wants(nurse, "change_notice"):
                    rows.append(
                        {
                            "key": f"change:{about}:user:{nurse.id}:{patient_id}",
                            "kind": "change_notice",
                            "user_id": nurse.id,
                            "infusion_id": first,
                            "subject": f"Appointment change at {center.name}: {who}",
                            "body": mail.paragraphs(staff_text),
                        }
                    )
    _supersede(session, [c.infusion.id for c in changes], now)
    insert_once(session, Notice, notices)
    session.info.pop(SEEN, None)
    return enqueue(session, rows, now)


def _supersede(session: so.Session, infusion_ids: list[int], now: dt.datetime) -> None:
    """A later change of the same appointments replaces the notices about them not yet sent
    or done (nobody gets "new at 10:00" and "moved to 11:00" in one sweep); a notice that also
    spoke of other appointments stays."""
    changed = set(infusion_ids)

    def covered(key: str | None) -> bool:
        about = (key or "").split(":")
        named = about[2] if len(about) > 2 else "many"
        return named != "many" and {int(i) for i in named.split("-")} <= changed

    for model, open_ in (
        (Reminder, sa.and_(Reminder.sent_at.is_(None), Reminder.dropped_reason.is_(None))),
        (Notice, Notice.done_at.is_(None)),
    ):
        rows = session.execute(
            sa.select(model.id, model.key).where(
                model.kind == "change_notice", model.infusion_id.in_(changed), open_
            )
        ).all()
        ids = [row.id for row in rows if covered(row.key)]
        if not ids:
            continue
        values: dict[str, Any] = (
            {"dropped_reason": "superseded by a later change"}
            if model is Reminder
            else {"done_at": now}
        )
        session.execute(
            sa.update(model)
            .where(model.id.in_(ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


# --- the day-before reminder ------------------------------------------------------------------


def plan_day_before(session: so.Session, settings: Settings, now: dt.datetime) -> dict[str, int]:
    """Daily: a reminder for each patient (with consent) whose cycle starts tomorrow at their
    center, due at the configured local hour today."""
    planned = 0
    for center in session.scalars(sa.select(Center).order_by(Center.id)):
        zone = ZoneInfo(center.timezone)
        today = schedule.local_date(now, center.timezone)
        tomorrow = today + dt.timedelta(days=1)
        due = dt.datetime.combine(
            today, dt.time(settings.notices.day_before_hour), tzinfo=zone
        ).astimezone(dt.UTC)
        rows = session.execute(
            sa.select(Infusion, Patient)
            .join(Patient, Patient.id == Infusion.patient_id)
            .where(
                Infusion.center_id == center.id,
                Infusion.planned_date == tomorrow,
                Infusion.day_number == 1,
                Infusion.status == InfusionStatus.SCHEDULED,
                Patient.contact_email.is_not(None),
                Patient.contact_consent_at.is_not(None),
            )
            .order_by(Infusion.id)
        ).all()
        for batch_start in range(0, len(rows), settings.scheduler.batch_size):
            batch = rows[batch_start : batch_start + settings.scheduler.batch_size]
            reminders = [
                {
                    "key": f"day_before:{infusion.id}:{infusion.planned_date}",
                    "kind": "day_before",
                    "patient_id": patient.id,
                    "infusion_id": infusion.id,
                    "subject": f"Reminder: infusion appointment tomorrow "
                    f"({settings.app.clinic_name})",
                    "body": day_before_body(patient, infusion, center),
                    "due_at": due,
                }
                for infusion, patient in batch
            ]
            planned += jobruns.in_batch(
                session, functools.partial(enqueue, session, reminders, now)
            )
    return {"planned": planned}


def day_before_body(patient: Patient, infusion: Infusion, center: Center) -> str:
    """The day-before reminder as the patient reads it: the day, the time and the place.
    Written again when it is sent, so a time moved since it was planned reads right."""
    place = center.name + (f", {center.address}" if center.address else "")
    return mail.paragraphs(
        f"Dear {patient.given_name},",
        f"A reminder of your appointment tomorrow, "
        f"{_when(_slot_of(infusion), ZoneInfo(center.timezone))}, at {place}.",
        "Call the center if you cannot come.",
    )


# --- the sweep --------------------------------------------------------------------------------


def _address(session: so.Session, reminder: Reminder) -> tuple[str, str] | str:
    """The (address, name) to send to, or why it will not be sent."""
    if reminder.user_id is not None:
        user = session.get(User, reminder.user_id)
        if user is None or not user.active:
            return "the user's account is closed"
        if not wants(user, reminder.kind):
            return "the user chose not to receive this kind"
        return user.email, user.full_name
    patient = session.get(Patient, reminder.patient_id)
    if patient is None or not patient.contact_email or patient.contact_consent_at is None:
        return "the patient has no contact e-mail with consent"
    if not mail.usable_address(patient.contact_email):
        return "the patient's contact e-mail cannot be used"
    return patient.contact_email, f"{patient.given_name} {patient.family_name}"


def _still_true(session: so.Session, reminder: Reminder) -> str | None:
    """Why a day-before reminder no longer applies (the appointment moved or went), or None."""
    if reminder.kind != "day_before" or reminder.infusion_id is None:
        return None
    infusion = session.get(Infusion, reminder.infusion_id)
    day = reminder.key.rsplit(":", 1)[-1]
    if infusion is None or infusion.status != InfusionStatus.SCHEDULED:
        return "the appointment is no longer booked"
    if str(infusion.planned_date) != day:
        return "the appointment moved (a change notice went out)"
    return None


def _due_batch(
    session: so.Session, settings: Settings, now: dt.datetime, after_id: int
) -> list[Reminder]:
    statement = (
        sa.select(Reminder)
        .where(
            Reminder.sent_at.is_(None),
            Reminder.dropped_reason.is_(None),
            Reminder.due_at <= now,
            Reminder.id > after_id,
        )
        .order_by(Reminder.id)
        .limit(settings.scheduler.batch_size)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(skip_locked=True)
    return list(session.scalars(statement))


def sweep(session: so.Session, settings: Settings, now: dt.datetime) -> dict[str, int]:
    """Send every due reminder, a batch per transaction; returns what was sent and dropped."""
    counts = {"sent": 0, "messages": 0, "dropped": 0, "failed": 0, "batches": 0}
    last_id = 0
    while True:
        with unit_of_work(session):
            batch = _due_batch(session, settings, now, last_id)
            if not batch:
                break
            counts["batches"] += 1
            last_id = batch[-1].id
            outcome = _Outcome()
            try:
                if not settings.smtp.configured:
                    for reminder in batch:
                        outcome.drop(reminder, "no mail server is configured ([smtp].host)")
                else:
                    _deliver(settings, _messages(session, batch, outcome), outcome)
            except Unavailable as exc:
                # The server is down: what this batch did not send waits for the next run
                # (not an attempt of any message: an outage drops nothing).
                outcome.fail(
                    [r for r in batch if not outcome.settled(r)],
                    str(exc),
                    attempt=not isinstance(exc, mail.Unreachable),
                )
                log.warning("reminders: mail server unavailable: %s", exc)
                outcome.apply(session, batch, counts)
                break
            outcome.apply(session, batch, counts)
    return counts


@dataclasses.dataclass
class _Outcome:
    """What a batch did to its rows, written back in a few statements (not one per row)."""

    sent: list[int] = dataclasses.field(default_factory=list)
    messages: int = 0
    dropped: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    failed: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    #: Ids not sent because the server could not be reached (not counted as attempts).
    waiting: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def drop(self, reminder: Reminder, reason: str) -> None:
        self.dropped.setdefault(reason[:200], []).append(reminder.id)

    def fail(self, rows: Iterable[Reminder], error: str, attempt: bool = True) -> None:
        target = self.failed if attempt else self.waiting
        target.setdefault(error[:500], []).extend(r.id for r in rows)

    def settled(self, reminder: Reminder) -> bool:
        return reminder.id in self.sent or any(
            reminder.id in ids
            for ids in (*self.dropped.values(), *self.failed.values(), *self.waiting.values())
        )

    def apply(self, session: so.Session, batch: Sequence[Reminder], counts: dict[str, int]) -> None:
        def update(ids: list[int]) -> sa.Update:
            return (
                sa.update(Reminder)
                .where(Reminder.id.in_(ids))
                .execution_options(synchronize_session=False)
            )

        if self.sent:
            session.execute(
                update(self.sent).values(sent_at=utcnow(), attempts=Reminder.attempts + 1)
            )
        for reason, ids in self.dropped.items():
            session.execute(update(ids).values(dropped_reason=reason))
        for error, ids in self.failed.items():
            session.execute(
                update(ids).values(
                    attempts=Reminder.attempts + 1,
                    last_error=error,
                    dropped_reason=sa.case(
                        (Reminder.attempts + 1 >= MAX_ATTEMPTS, f"refused {MAX_ATTEMPTS} times"),
                        else_=Reminder.dropped_reason,
                    ),
                )
            )
        for error, ids in self.waiting.items():
            session.execute(update(ids).values(last_error=error))
        for reminder in batch:
            session.expire(reminder)
        counts["sent"] += len(self.sent)
        counts["messages"] += self.messages
        counts["dropped"] += sum(len(ids) for ids in self.dropped.values())
        counts["failed"] += sum(len(ids) for ids in (*self.failed.values(), *self.waiting.values()))


_Message = tuple[tuple[str, str], str, str, list[Reminder]]


def _prefetch(session: so.Session, batch: Sequence[Reminder]) -> list[object]:
    """Load a batch's recipients and appointments in three queries; the caller holds the
    list while the batch runs (the identity map holds rows only while they are referenced),
    so the session.get calls that follow find them without a query."""
    held: list[object] = []
    for model, ids in (
        (User, {r.user_id for r in batch if r.user_id is not None}),
        (Patient, {r.patient_id for r in batch if r.patient_id is not None}),
        (Infusion, {r.infusion_id for r in batch if r.kind == "day_before" and r.infusion_id}),
    ):
        if ids:
            held.extend(session.scalars(sa.select(model).where(model.id.in_(ids))))
    at = {i.center_id for i in held if isinstance(i, Infusion)}
    if at:
        held.extend(session.scalars(sa.select(Center).where(Center.id.in_(at))))
    return held


def _messages(session: so.Session, batch: list[Reminder], outcome: _Outcome) -> list[_Message]:
    """The e-mails a batch makes: (address and name, subject, body, the rows they send).
    Each reminder goes on its own, except tasks: each recipient's tasks of a batch go as one
    e-mail listing them (a nurse gets one message for a day's review tasks, not fifty)."""
    messages: list[_Message] = []
    tasks: dict[int, list[Reminder]] = {}
    held = _prefetch(session, batch)
    for reminder in batch:
        reason = _still_true(session, reminder)
        target = _address(session, reminder)
        if reason is None and isinstance(target, str):
            reason = target
        if reason is not None:
            outcome.drop(reminder, reason)
        elif reminder.kind == "task" and reminder.user_id is not None:
            tasks.setdefault(reminder.user_id, []).append(reminder)
        else:
            assert not isinstance(target, str)
            body = reminder.body
            if reminder.kind == "day_before":
                infusion = session.get(Infusion, reminder.infusion_id)
                patient = session.get(Patient, reminder.patient_id)
                assert infusion is not None and patient is not None  # _still_true saw them
                center = session.get(Center, infusion.center_id)
                assert center is not None
                body = day_before_body(patient, infusion, center)
            messages.append((target, reminder.subject, body, [reminder]))
    for group in tasks.values():
        target = _address(session, group[0])
        assert not isinstance(target, str)
        if len(group) == 1:
            body = mail.paragraphs(group[0].body, "It is on your worklist; mark it done there.")
            messages.append((target, group[0].subject, body, group))
            continue
        body = mail.paragraphs(*(f"- {r.body}" for r in group), _ON_WORKLIST)
        messages.append((target, f"{len(group)} new tasks on your worklist", body, group))
    del held
    return messages


def _deliver(settings: Settings, messages: list[_Message], outcome: _Outcome) -> None:
    if not messages:
        return
    with mail.connection(settings.smtp) as server:
        for (address, name), subject, body, rows in messages:
            try:
                message = mail.compose(settings.smtp, address, subject, body, to_name=name)
            except (ValueError, TypeError, MessageError) as exc:
                for reminder in rows:  # a bad address or name: this one never goes
                    outcome.drop(reminder, f"the message cannot be written: {exc}")
                continue
            try:
                server.send(message)
            except mail.Unreachable:
                raise  # the server went away: the rest of the batch waits
            except Unavailable as exc:
                outcome.fail(rows, str(exc))
                continue
            outcome.sent.extend(r.id for r in rows)
            outcome.messages += 1


_ON_WORKLIST = "Each is on your worklist; mark it done there."
