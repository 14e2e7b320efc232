"""How staff-facing text outside the app names a patient: initials and a short id.

Staff calendar feeds and staff e-mails leave the clinic's systems; they name a patient by
initials and a six-character id (an HMAC of the patient's id under the app's secret, so it
cannot be turned back into the patient or guessed), unless a clinic asks feeds for full
names. The worklist and the patient page, inside the app, show the name.
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from app.models import Patient


@functools.lru_cache(maxsize=32_768)
def short_id(patient_id: int, secret: str) -> str:
    """Six hex characters that stand for a patient in text that leaves the app.

    Kept per process (an HMAC per patient per feed request was a tenth of a feed's time):
    the id and the secret decide it, and neither changes for a patient.
    """
    return hmac.new(secret.encode(), f"patient:{patient_id}".encode(), hashlib.sha256).hexdigest()[
        :6
    ]


def initials(given_name: str, family_name: str) -> str:
    return f"{given_name[:1]}{family_name[:1]}".upper()


def staff_label(patient: Patient, secret: str) -> str:
    """Initials and short id, e.g. "AB #3f9c2e"."""
    return f"{initials(patient.given_name, patient.family_name)} #{short_id(patient.id, secret)}"
