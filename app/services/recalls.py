"""Lot recalls: which patients received a lot of product, when, where and how much.

Infusions recorded at the chair name each vial (lot, expiry, size); an infusion recorded
after the fact on the short form names its lots as text only. A recall finds both: the
latter without expiry or vials ("lot named in the record only"), so nobody is missed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator

import sqlalchemy as sa
import sqlalchemy.orm as so

from app.domain import dosing, visit
from app.models import Center, Infusion, InfusionVial, Patient, Regimen


def _lot_length() -> int:
    """The longest lot number a vial record holds (InfusionVial.lot_number's width)."""
    column_type = InfusionVial.__table__.c["lot_number"].type
    assert isinstance(column_type, sa.String) and column_type.length is not None
    return column_type.length


_LOT_LENGTH = _lot_length()


@dataclasses.dataclass(frozen=True)
class VialCount:
    """Vials of one size from the lot: how many, of how many grams each."""

    count: int
    vial_grams: float


@dataclasses.dataclass(frozen=True)
class Recipient:
    """One infusion that used the lot, with its patient and what of the lot it used."""

    patient_id: int
    mrn: str
    family_name: str
    given_name: str
    birth_date: dt.date
    infusion_id: int
    #: Local date of the infusion at its center.
    planned_date: dt.date
    #: UTC; the center's time zone (center_timezone) is the reader's to apply.
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    status: str
    center_id: int
    center_name: str
    center_timezone: str
    product: str
    lot_number: str
    #: None, with no vials, for a lot named only in a record's text (the short form).
    expires_on: dt.date | None
    vials: tuple[VialCount, ...]
    vial_count: int
    #: None when the record does not say how much came from this lot.
    grams: float | None

    @property
    def display_name(self) -> str:
        return f"{self.family_name}, {self.given_name}"

    @property
    def vials_text(self) -> str:
        """The vials of the lot as every page writes vials (dosing.describe_vials)."""
        if not self.vials:
            return "lot named in the record only (no vial details)"
        return dosing.describe_vials([(v.vial_grams, v.count) for v in self.vials])


def _could_be_stored(lot: str) -> bool:
    """Whether a vial record could hold this lot number (a longer one, or one with control
    characters, names no lot; PostgreSQL would refuse a NUL in the query besides)."""
    return 0 < len(lot) <= _LOT_LENGTH and lot.isprintable()


def recipients(session: so.Session, lot_number: str) -> list[Recipient]:
    """Every infusion that used the lot (searched as stored: trimmed, upper-case, no spaces),
    by date then patient; a lot no one received gives an empty list."""
    lot = visit.normal_lot(lot_number)
    if not _could_be_stored(lot):
        return []
    rows = session.execute(
        sa.select(
            InfusionVial.infusion_id,
            InfusionVial.product,
            InfusionVial.lot_number,
            InfusionVial.expires_on,
            InfusionVial.vial_grams,
            InfusionVial.count,
            Infusion.planned_date,
            Infusion.given_started_at,
            Infusion.given_ended_at,
            Infusion.status,
            Infusion.center_id,
            Center.name.label("center_name"),
            Center.timezone.label("center_timezone"),
            Patient.id.label("patient_id"),
            Patient.mrn,
            Patient.family_name,
            Patient.given_name,
            Patient.birth_date,
        )
        .join(Infusion, Infusion.id == InfusionVial.infusion_id)
        .join(Patient, Patient.id == Infusion.patient_id)
        .join(Center, Center.id == Infusion.center_id)
        .where(InfusionVial.lot_number == lot)
        .order_by(
            Infusion.planned_date,
            Patient.family_name,
            Patient.given_name,
            Patient.id,
            Infusion.id,
            InfusionVial.id,
        )
    ).mappings()
    # An infusion's vials of the lot make one line (several sizes, or entered in two rows);
    # a product or expiry that differs between rows stays on a line of its own, to be seen.
    grouped: dict[tuple[int, str, dt.date], list[sa.RowMapping]] = {}
    for row in rows:
        grouped.setdefault((row["infusion_id"], row["product"], row["expires_on"]), []).append(row)
    found = [_recipient(group) for group in grouped.values()]
    found += _named_in_text(session, lot, {r.infusion_id for r in found})
    found.sort(key=lambda r: (r.planned_date, r.family_name, r.given_name, r.patient_id))
    return found


def _named_in_text(session: so.Session, lot: str, seen: set[int]) -> list[Recipient]:
    """Given infusions without vial records whose lots text names the lot (the short form
    writes "A1, B2"): narrowed in SQL, matched exactly per named lot here."""
    squeezed = sa.func.upper(sa.func.replace(Infusion.lot_numbers, " ", ""))
    rows = session.execute(
        sa.select(
            Infusion.id,
            Infusion.lot_numbers,
            Infusion.planned_date,
            Infusion.given_started_at,
            Infusion.given_ended_at,
            Infusion.status,
            Infusion.center_id,
            Infusion.given_grams,
            Center.name,
            Center.timezone,
            Patient.id.label("patient_id"),
            Patient.mrn,
            Patient.family_name,
            Patient.given_name,
            Patient.birth_date,
            Regimen.product,
        )
        .join(Patient, Patient.id == Infusion.patient_id)
        .join(Center, Center.id == Infusion.center_id)
        .join(Regimen, Regimen.id == Infusion.regimen_id)
        .where(
            squeezed.contains(lot, autoescape=True),
            ~sa.exists().where(InfusionVial.infusion_id == Infusion.id),
        )
    ).all()
    found = []
    for row in rows:
        text = row.lot_numbers or ""
        # "A1, B2" or "A1 B2": each part a lot; the whole text without spaces one too.
        parts = re.split(r"[,;/]", text) + re.split(r"[,;/\s]+", text)
        named = {visit.normal_lot(part) for part in parts}
        if lot not in named or row.id in seen:
            continue
        found.append(
            Recipient(
                patient_id=row.patient_id,
                mrn=row.mrn,
                family_name=row.family_name,
                given_name=row.given_name,
                birth_date=row.birth_date,
                infusion_id=row.id,
                planned_date=row.planned_date,
                started_at=row.given_started_at,
                ended_at=row.given_ended_at,
                status=row.status,
                center_id=row.center_id,
                center_name=row.name,
                center_timezone=row.timezone,
                product=row.product,
                lot_number=lot,
                expires_on=None,
                vials=(),
                vial_count=0,
                grams=None,
            )
        )
    return found


def _recipient(rows: list[sa.RowMapping]) -> Recipient:
    first = rows[0]
    vials = tuple(VialCount(count=r["count"], vial_grams=r["vial_grams"]) for r in rows)
    return Recipient(
        patient_id=first["patient_id"],
        mrn=first["mrn"],
        family_name=first["family_name"],
        given_name=first["given_name"],
        birth_date=first["birth_date"],
        infusion_id=first["infusion_id"],
        planned_date=first["planned_date"],
        started_at=first["given_started_at"],
        ended_at=first["given_ended_at"],
        status=first["status"],
        center_id=first["center_id"],
        center_name=first["center_name"],
        center_timezone=first["center_timezone"],
        product=first["product"],
        lot_number=first["lot_number"],
        expires_on=first["expires_on"],
        vials=vials,
        vial_count=sum(v.count for v in vials),
        grams=round(sum(v.count * v.vial_grams for v in vials), 3),
    )


#: The CSV's columns (times in UTC, as the audit export's).
EXPORT_HEADER = [
    "date",
    "started_at_utc",
    "ended_at_utc",
    "patient_id",
    "mrn",
    "family_name",
    "given_name",
    "birth_date",
    "infusion_id",
    "status",
    "center",
    "product",
    "lot_number",
    "expires_on",
    "vials",
    "vial_count",
    "grams",
]


def export_rows(found: list[Recipient]) -> Iterator[list[object]]:
    """The recipients as CSV rows, a header first; dates and times in ISO 8601."""
    yield list(EXPORT_HEADER)
    for r in found:
        yield [
            r.planned_date.isoformat(),
            r.started_at.isoformat() if r.started_at else "",
            r.ended_at.isoformat() if r.ended_at else "",
            r.patient_id,
            r.mrn,
            r.family_name,
            r.given_name,
            r.birth_date.isoformat(),
            r.infusion_id,
            r.status,
            r.center_name,
            r.product,
            r.lot_number,
            r.expires_on.isoformat() if r.expires_on else "",
            r.vials_text,
            r.vial_count,
            f"{r.grams:g}" if r.grams is not None else "",
        ]
