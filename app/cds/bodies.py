"""Read CDS Hooks request bodies into the service's values; a wrong one is a 400 naming the field.

Unknown fields are ignored (the spec reserves `extension` and lets hooks grow).

order-sign: only a call malformed as a CDS Hooks call is a 400 (not an object, no
context.draftOrders Bundle, an entry that is no request resource). An IVIG draft whose dose or
timing cannot be read is no reason to refuse the call: an EHR ignores a service that errs, so
the order would be signed unchecked. It is read as an UnreadableDraft, which gets a card saying
why it cannot be checked, and the call's other drafts are checked as usual.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal, get_args

from app.config import CdsSettings
from app.domain import order_check
from app.domain.dosing import WeightBasis
from app.services import cds as cds_service

#: Longest string read from a body (ids, codes, comments); the spec sets no limits.
_MAX_TEXT = 4000


class BadBody(Exception):
    """The body is not what the spec asks for (HTTP 400)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        #: What is wrong, without the field.
        self.reason = message
        self.message = str(self)


def _text(value: Any, field: str | None, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise BadBody(field, "give a non-empty string" if required else "give a string")
    if len(value) > _MAX_TEXT:
        raise BadBody(field, f"at most {_MAX_TEXT} characters")
    return value


def _object(value: Any, field: str | None) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadBody(field, "give a JSON object")
    return value


def patient_view(body: Any, service: cds_service.CdsService) -> cds_service.PatientView:
    """Read a patient-view call (hook, hookInstance, context.patientId, prefetch.patient).

    A missing prefetch.patient is None here; the view answers 412 for it (the service cannot
    fetch the Patient itself). A null one means the EHR has no such Patient.
    """
    body = _object(body, None)
    hook = _text(body.get("hook"), "hook")
    if hook != service.hook:
        raise BadBody("hook", f"this service answers the {service.hook} hook (got {hook!r})")
    hook_instance = _text(body.get("hookInstance"), "hookInstance")
    _text(body.get("fhirServer"), "fhirServer", required=False)
    context = _object(body.get("context"), "context")
    patient_id = _text(context.get("patientId"), "context.patientId")
    user = _text(context.get("userId"), "context.userId", required=False)
    prefetch = body.get("prefetch")
    resource = None
    if prefetch is not None:
        resource = _object(prefetch, "prefetch").get(cds_service.PATIENT_PREFETCH)
        if resource is not None:
            resource = _object(resource, "prefetch.patient")
    assert hook_instance is not None and patient_id is not None
    return cds_service.PatientView(hook_instance, patient_id, user, resource)


def has_patient_prefetch(body: Mapping[str, Any]) -> bool:
    """Whether the call carries the prefetch.patient key (null counts: the EHR has none)."""
    prefetch = body.get("prefetch")
    return isinstance(prefetch, Mapping) and cds_service.PATIENT_PREFETCH in prefetch


def _timestamp(value: Any, field: str) -> dt.datetime:
    text = _text(value, field)
    assert text is not None
    try:
        instant = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadBody(field, "give an ISO 8601 date and time, e.g. 2026-12-03T10:05:31Z") from None
    if instant.utcoffset() is None:
        raise BadBody(field, "give the time in UTC, e.g. 2026-12-03T10:05:31Z")
    return instant.astimezone(dt.UTC)


def _coding(value: Any, field: str) -> cds_service.Coding | None:
    if value is None:
        return None
    coding = _object(value, field)
    code = _text(coding.get("code"), f"{field}.code")
    system = _text(coding.get("system"), f"{field}.system", required=False) or ""
    display = _text(coding.get("display"), f"{field}.display", required=False)
    assert code is not None
    return cds_service.Coding(code, system, display)


def _entry(value: Any, field: str) -> cds_service.Feedback:
    entry = _object(value, field)
    card = _text(entry.get("card"), f"{field}.card")
    outcome = entry.get("outcome")
    if outcome not in ("accepted", "overridden"):
        raise BadBody(f"{field}.outcome", f'give "accepted" or "overridden" (got {outcome!r})')
    when = _timestamp(entry.get("outcomeTimestamp"), f"{field}.outcomeTimestamp")
    reason = entry.get("overrideReason")
    coding, comment = None, None
    if reason is not None:
        reason = _object(reason, f"{field}.overrideReason")
        coding = _coding(reason.get("reason"), f"{field}.overrideReason.reason")
        comment = _text(
            reason.get("userComment"), f"{field}.overrideReason.userComment", required=False
        )
    accepted = entry.get("acceptedSuggestions") or []
    if not isinstance(accepted, list):
        raise BadBody(f"{field}.acceptedSuggestions", "give a list")
    ids = tuple(
        _text(_object(s, f"{field}.acceptedSuggestions.{n}").get("id"), f"{field}.id") or ""
        for n, s in enumerate(accepted)
    )
    assert card is not None
    kind: Literal["accepted", "overridden"] = outcome
    return cds_service.Feedback(card, kind, when, coding, comment, ids)


def feedback(body: Any) -> list[cds_service.Feedback]:
    """Read a feedback call: {"feedback": [{card, outcome, overrideReason, outcomeTimestamp}]}."""
    entries = _object(body, None).get("feedback")
    if not isinstance(entries, list):
        raise BadBody("feedback", "give a list of feedback entries")
    if len(entries) > cds_service.MAX_FEEDBACK:
        raise BadBody("feedback", f"at most {cds_service.MAX_FEEDBACK} entries a call")
    return [_entry(value, f"feedback.{n}") for n, value in enumerate(entries)]


# --- order-sign --------------------------------------------------------------------------------

#: R4 request resources an order-sign Bundle may carry (the hook: "FHIR request resources").
REQUEST_TYPES = frozenset(
    {
        "MedicationRequest",
        "ServiceRequest",
        "NutritionOrder",
        "DeviceRequest",
        "VisionPrescription",
        "SupplyRequest",
        "CommunicationRequest",
        "ImmunizationRecommendation",
        "CarePlan",
        "RequestGroup",
        "Task",
        "Appointment",
    }
)
#: Most entries a draftOrders Bundle may hold (the spec sets no limit; this bounds the work).
MAX_DRAFT_ORDERS = 100
#: UCUM codes (or units) of a dose per infusion day, and the factor to g/kg or g.
_DOSE_UNITS: dict[str, tuple[order_check.DoseUnit, float]] = {
    "g/kg": ("g/kg", 1.0),
    "mg/kg": ("g/kg", 0.001),
    "g": ("g", 1.0),
    "mg": ("g", 0.001),
}
#: UCUM codes (or units) of a rate.
_RATE_UNITS: dict[str, order_check.RateUnit] = {
    "mL/kg/min": "mL/kg/min",
    "mL/(kg.min)": "mL/kg/min",
    "mL/h": "mL/h",
    "mL/hr": "mL/h",
    "mg/kg/min": "mg/kg/min",
    "mg/(kg.min)": "mg/kg/min",
}
#: FHIR's dose-rate-type code system (ordered, calculated).
DOSE_RATE_TYPE = "http://terminology.hl7.org/CodeSystem/dose-rate-type"
#: Days per periodUnit a cycle's interval may be given in.
_PERIOD_DAYS = {"wk": 7, "d": 1}
#: Days per unit (UCUM code or unit) of a "daily for N days" order's boundsDuration.
_DURATION_DAYS = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7}
#: IVIG brand names as a draft's medication text may hold them (FDA-licensed immune globulin
#: intravenous products, and those licensed in the EU), lower case -> the name shown. A draft
#: naming one is IVIG, and names that product: one the clinic does not stock ([cds]
#: product_text) is said so on a card, never checked as the patient's own product.
#: Subcutaneous-only brands (Hizentra, Cuvitru, Xembify, Cutaquig, HyQvia) are no IVIG.
IVIG_BRANDS: Mapping[str, str] = {
    "alyglo": "Alyglo",
    "asceniv": "Asceniv",
    "bivigam": "Bivigam",
    "carimune": "Carimune NF",
    "flebogamma": "Flebogamma DIF",
    "gammagard": "Gammagard",
    "gammaked": "Gammaked",
    "gammaplex": "Gammaplex",
    "gamunex": "Gamunex-C",
    "intratect": "Intratect",
    "iqymune": "Iqymune",
    "kiovig": "Kiovig",
    "nanogam": "Nanogam",
    "octagam": "Octagam",
    "panzyga": "Panzyga",
    "privigen": "Privigen",
    "sandoglobulin": "Sandoglobulin",
    "yimmugo": "Yimmugo",
}


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadBody(field, "give a JSON array")
    return value


def _number_value(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadBody(field, f"give a number (got {value!r})")
    if value <= 0:
        raise BadBody(field, f"must be above 0 (got {value!r})")
    return float(value)


def _whole(value: Any, field: str) -> int:
    number = _number_value(value, field)
    if number != int(number):
        raise BadBody(field, f"give a whole number (got {value!r})")
    return int(number)


def _texts(resource: Mapping[str, Any]) -> tuple[list[tuple[str, str]], list[str]]:
    """The (system, code) pairs and the texts naming a MedicationRequest's medication."""
    codes: list[tuple[str, str]] = []
    texts: list[str] = []
    concept = resource.get("medicationCodeableConcept")
    if isinstance(concept, Mapping):
        if isinstance(concept.get("text"), str):
            texts.append(concept["text"])
        for coding in concept.get("coding") or []:
            if not isinstance(coding, Mapping):
                continue
            if isinstance(coding.get("code"), str):
                codes.append((str(coding.get("system") or ""), coding["code"]))
            if isinstance(coding.get("display"), str):
                texts.append(coding["display"])
    reference = resource.get("medicationReference")
    if isinstance(reference, Mapping) and isinstance(reference.get("display"), str):
        texts.append(reference["display"])
    return codes, texts


def is_ivig(resource: Mapping[str, Any], rules: CdsSettings) -> bool:
    """Whether a MedicationRequest orders IVIG: a configured code, a configured text, or an
    IVIG brand's name (IVIG_BRANDS)."""
    codes, texts = _texts(resource)
    for wanted in rules.ivig_codes:
        system, bar, code = wanted.rpartition("|")
        if any(c == code and (not bar or s == system) for s, c in codes):
            return True
    lowered = " ".join(texts).casefold()
    words = [
        *rules.ivig_text,
        *(t for ts in rules.product_text.values() for t in ts),
        *IVIG_BRANDS,
    ]
    return any(word.casefold() in lowered for word in words)


def _product(resource: Mapping[str, Any], field: str, rules: CdsSettings) -> str | None:
    """The product a draft names: a configured one ([cds] product_text), else an IVIG brand
    the clinic does not stock; None when it names none (generic, or a code alone)."""
    lowered = " ".join(_texts(resource)[1]).casefold()
    named = [
        name
        for name, words in rules.product_text.items()
        if any(word.casefold() in lowered for word in words)
    ]
    # A brand is the configured product it names, when that one is named.
    covered = [w.casefold() for name in named for w in (name, *rules.product_text[name])]
    others = sorted(
        {
            shown
            for word, shown in IVIG_BRANDS.items()
            if word in lowered and not any(word in c or c in word for c in covered)
        }
    )
    products = [*named, *others]
    if len(products) > 1:
        raise BadBody(
            f"{field}.medicationCodeableConcept",
            f"names more than one IVIG product ({', '.join(products)}): name the one to give",
        )
    return products[0] if products else None


def _quantity(value: Any, field: str, units: Mapping[str, Any]) -> tuple[float, Any]:
    quantity = _object(value, field)
    amount = _number_value(quantity.get("value"), f"{field}.value")
    code = quantity.get("code") if isinstance(quantity.get("code"), str) else quantity.get("unit")
    if not isinstance(code, str) or code not in units:
        raise BadBody(
            f"{field}.code",
            f"give the UCUM unit, one of {', '.join(units)} (got {code!r})",
        )
    return amount, units[code]


def _start(repeat: Mapping[str, Any], field: str) -> dt.date | None:
    bounds = repeat.get("boundsPeriod")
    if bounds is None:
        return None
    start = _object(bounds, f"{field}.boundsPeriod").get("start")
    if start is None:
        return None
    text = _text(start, f"{field}.boundsPeriod.start")
    assert text is not None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise BadBody(
            f"{field}.boundsPeriod.start", "give a FHIR date or dateTime, e.g. 2026-12-07"
        ) from None


def _weight_basis(dosage: Mapping[str, Any], field: str) -> WeightBasis | None:
    for n, extension in enumerate(_list(dosage.get("extension", []), f"{field}.extension")):
        if isinstance(extension, Mapping) and extension.get("url") == (
            cds_service.WEIGHT_BASIS_EXTENSION
        ):
            code = extension.get("valueCode")
            if code not in get_args(WeightBasis):
                raise BadBody(
                    f"{field}.extension.{n}.valueCode",
                    f"give one of {', '.join(get_args(WeightBasis))} (got {code!r})",
                )
            return code
    return None


def _dose_type(entry: Mapping[str, Any]) -> str | None:
    kind = entry.get("type")
    codings = kind.get("coding") if isinstance(kind, Mapping) else None
    for coding in codings if isinstance(codings, list) else []:
        if isinstance(coding, Mapping) and coding.get("system") == DOSE_RATE_TYPE:
            code = coding.get("code")
            return code if isinstance(code, str) else None
    return None


def _cycle(repeat: Mapping[str, Any], at: str) -> tuple[int, int | None]:
    """Days per cycle and weeks between cycles from a timing.repeat: frequency days every
    period periodUnit (wk, or whole weeks of d); or "daily for N days" (frequency 1 every 1 d
    for boundsDuration N d, or count N), a cycle of N days whose interval the order does not
    say (None: it is not guessed)."""
    days = _whole(repeat.get("frequency"), f"{at}.frequency")
    period = _number_value(repeat.get("period"), f"{at}.period")
    period_unit = repeat.get("periodUnit")
    if period_unit not in _PERIOD_DAYS:
        raise BadBody(
            f"{at}.periodUnit",
            f'give the interval between cycles in "wk" or "d" (got {period_unit!r})',
        )
    interval_days = period * _PERIOD_DAYS[period_unit]
    if interval_days == 1:
        return _daily_days(repeat, at, days), None
    if interval_days % 7:
        raise BadBody(f"{at}.period", f"give whole weeks between cycles (got {interval_days:g} d)")
    return days, int(interval_days // 7)


def _daily_days(repeat: Mapping[str, Any], at: str, frequency: int) -> int:
    """The N of a "daily for N days" order, where its count and boundsDuration say it once."""
    if frequency != 1:
        raise BadBody(
            f"{at}.frequency",
            f"{frequency} infusions a day is no IVIG cycle: give one a day for N days, or the "
            "days per cycle as frequency every period wk",
        )
    said: dict[str, int] = {}
    if repeat.get("count") is not None:
        said["count"] = _whole(repeat["count"], f"{at}.count")
    if repeat.get("boundsDuration") is not None:
        duration = _object(repeat["boundsDuration"], f"{at}.boundsDuration")
        code = duration.get("code") if isinstance(duration.get("code"), str) else None
        unit = code or duration.get("unit")
        if not isinstance(unit, str) or unit not in _DURATION_DAYS:
            raise BadBody(
                f"{at}.boundsDuration.code",
                f'give the days of the cycle in "d" (got {unit!r})',
            )
        value = _whole(duration.get("value"), f"{at}.boundsDuration.value")
        said["boundsDuration"] = value * _DURATION_DAYS[unit]
    if not said:
        raise BadBody(
            at,
            "daily with no end: give the days of the cycle as boundsDuration (N d) or count, "
            "or the days per cycle as frequency every period wk",
        )
    if len(set(said.values())) > 1:
        raise BadBody(
            at,
            f"count {said['count']} and boundsDuration {said['boundsDuration']} d disagree: "
            "give the days of the cycle once",
        )
    return next(iter(said.values()))


def _draft(resource: Mapping[str, Any], field: str, rules: CdsSettings) -> cds_service.DraftOrder:
    """Read an IVIG MedicationRequest: dose per infusion day (doseAndRate.doseQuantity in
    g/kg or g), days per cycle and the interval (_cycle), from boundsPeriod.start, at most
    rateQuantity; the product it names (_product)."""
    dosages = _list(resource.get("dosageInstruction"), f"{field}.dosageInstruction")
    if len(dosages) != 1:
        raise BadBody(
            f"{field}.dosageInstruction",
            f"give exactly one Dosage for an IVIG cycle (got {len(dosages)})",
        )
    where = f"{field}.dosageInstruction.0"
    dosage = _object(dosages[0], where)
    rates = _list(dosage.get("doseAndRate"), f"{where}.doseAndRate")
    doses = [n for n, r in enumerate(rates) if isinstance(r, Mapping) and "doseQuantity" in r]
    # The "ordered" dose, where the entries say which is which (FHIR dose-rate-type: an
    # exported regimen also carries the "calculated" grams).
    ordered = [n for n in doses if _dose_type(rates[n]) == "ordered"]
    dose_index = (ordered or doses)[0] if doses else None
    if dose_index is None:
        raise BadBody(
            f"{where}.doseAndRate",
            "give the dose per infusion day as doseQuantity (g/kg or g) in one entry",
        )
    amount, (unit, factor) = _quantity(
        rates[dose_index]["doseQuantity"],
        f"{where}.doseAndRate.{dose_index}.doseQuantity",
        _DOSE_UNITS,
    )
    rate_index = next(
        (n for n, r in enumerate(rates) if isinstance(r, Mapping) and "rateQuantity" in r), None
    )
    rate, rate_unit = None, None
    if rate_index is not None:
        rate, rate_unit = _quantity(
            rates[rate_index]["rateQuantity"],
            f"{where}.doseAndRate.{rate_index}.rateQuantity",
            _RATE_UNITS,
        )
    timing = _object(dosage.get("timing"), f"{where}.timing")
    repeat = _object(timing.get("repeat"), f"{where}.timing.repeat")
    at = f"{where}.timing.repeat"
    days, interval_weeks = _cycle(repeat, at)
    return cds_service.DraftOrder(
        field=field,
        resource=resource,
        product=_product(resource, field, rules),
        amount=amount * factor,
        unit=unit,
        days_per_cycle=days,
        interval_weeks=interval_weeks,
        starts_on=_start(repeat, at),
        weight_basis=_weight_basis(dosage, where),
        rate=rate,
        rate_unit=rate_unit,
        dose_index=dose_index,
        rate_index=rate_index,
    )


def order_sign(
    body: Any, service: cds_service.CdsService, rules: CdsSettings
) -> cds_service.OrderSign:
    """Read an order-sign call: context.userId, patientId, draftOrders (an R4 Bundle of draft
    request resources); the IVIG MedicationRequests among them are read as drafts."""
    body = _object(body, None)
    hook = _text(body.get("hook"), "hook")
    if hook != service.hook:
        raise BadBody("hook", f"this service answers the {service.hook} hook (got {hook!r})")
    hook_instance = _text(body.get("hookInstance"), "hookInstance")
    _text(body.get("fhirServer"), "fhirServer", required=False)
    context = _object(body.get("context"), "context")
    user = _text(context.get("userId"), "context.userId")
    patient_id = _text(context.get("patientId"), "context.patientId")
    bundle = _object(context.get("draftOrders"), "context.draftOrders")
    if bundle.get("resourceType") != "Bundle":
        raise BadBody(
            "context.draftOrders.resourceType",
            f"give a FHIR Bundle (got {bundle.get('resourceType')!r})",
        )
    entries = _list(bundle.get("entry", []), "context.draftOrders.entry")
    if len(entries) > MAX_DRAFT_ORDERS:
        raise BadBody("context.draftOrders.entry", f"at most {MAX_DRAFT_ORDERS} draft orders")
    drafts: list[cds_service.DraftOrder | cds_service.UnreadableDraft] = []
    for n, entry in enumerate(entries):
        field = f"context.draftOrders.entry.{n}.resource"
        resource = _object(_object(entry, f"context.draftOrders.entry.{n}").get("resource"), field)
        kind = resource.get("resourceType")
        if kind not in REQUEST_TYPES:
            raise BadBody(
                f"{field}.resourceType",
                f"a draft order is an R4 request resource, e.g. MedicationRequest (got {kind!r})",
            )
        if kind == "MedicationRequest" and is_ivig(resource, rules):
            try:
                drafts.append(_draft(resource, field, rules))
            except BadBody as exc:
                # Refusing the call would let the order through unchecked (module docstring).
                drafts.append(
                    cds_service.UnreadableDraft(field, resource, exc.field or field, exc.reason)
                )
    prefetch = body.get("prefetch")
    patient = None
    if prefetch is not None:
        patient = _object(prefetch, "prefetch").get(cds_service.PATIENT_PREFETCH)
        if patient is not None:
            patient = _object(patient, "prefetch.patient")
    assert hook_instance is not None and patient_id is not None
    return cds_service.OrderSign(
        hook_instance, patient_id, user, patient, tuple(drafts), len(entries)
    )
