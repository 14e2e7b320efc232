"""A refused form shows every problem at once, each next to its field in the words of the label
the user saw (with the limit and its unit), lists them above the page with links to the
fields, and keeps what was typed. Clinic setup: errors named internal fields
(`max_rate_ml_per_kg_min: ...`) at the top of the page, one at a time."""

from __future__ import annotations

from html.parser import HTMLParser

import sqlalchemy as sa

from app.models import Patient
from tests.conftest import csrf_of
from tests.db.clinic_fixtures import make_center
from tests.web.test_care_pages import logged_in


class Form(HTMLParser):
    """What a user sees of a form: each field's label, typed value and problem; the list."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, str] = {}
        self.values: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.listed: list[tuple[str, str]] = []
        self._label: list[str] | None = None
        self._label_for: str | None = None
        self._error: str | None = None
        self._item: list[str] | None = None
        self._link: str | None = None
        self._in_list = False

    def handle_starttag(self, tag, attrs):
        attr = dict(attrs)
        if tag == "label":
            self._label, self._label_for = [], None
        elif tag in ("input", "select") and attr.get("name"):
            if self._label is not None:
                self._label_for = attr.get("id") or attr["name"]
            if "value" in attr:
                self.values[attr["name"]] = attr["value"] or ""
            self._field = attr["name"]
        elif tag == "span" and attr.get("data-testid") == "field-error":
            self._error = attr["data-field"]
            self.errors[self._error] = ""
        elif tag == "div" and attr.get("data-testid") == "problems":
            self._in_list = True
        elif tag == "li" and self._in_list:
            self._item, self._link = [], None
        elif tag == "a" and self._item is not None:
            self._link = attr["href"]

    def handle_endtag(self, tag):
        if tag == "label" and self._label is not None:
            if self._label_for:
                # By the field's id ("patient-mrn"), the form's name and the field's.
                self.labels.setdefault(self._label_for, " ".join("".join(self._label).split()))
            self._label = None
        elif tag == "span":
            self._error = None
        elif tag == "li" and self._item is not None:
            self.listed.append((self._link or "", " ".join("".join(self._item).split())))
            self._item = None
        elif tag == "div":
            self._in_list = False

    def handle_data(self, data):
        if self._label is not None and self._label_for is None:
            self._label.append(data)
        if self._error is not None:
            self.errors[self._error] += data
        if self._item is not None:
            self._item.append(data)


def seen(response) -> Form:
    parser = Form()
    parser.feed(response.get_data(as_text=True))
    return parser


def test_a_refused_new_patient_shows_every_problem_by_its_label_and_keeps_what_was_typed(
    app, db_session, make_user
):
    center = make_center(db_session)
    db_session.commit()
    nurse = logged_in(app, make_user("nurse"))
    nurse.get("/patients/new")
    sent = {
        "csrf_token": csrf_of(nurse),
        "mrn": "",
        "family_name": "Okafor",
        "given_name": "Ada",
        "sex": "female",
        "birth_date": "1970-02-30",
        "height_cm": "450",
        "weight_kg": "heavy",
        "dm_subtype": "classic",
        "home_center_id": str(center.id),
    }
    refused = nurse.post("/patients/new", data=sent)
    assert refused.status_code == 422
    page = seen(refused)
    # All four at once, each under its own field.
    assert set(page.errors) == {"mrn", "birth_date", "height_cm", "weight_kg"}
    assert page.errors["mrn"] == "required"
    assert page.errors["height_cm"] == "must be at most 400 cm (got 450)"
    assert page.errors["weight_kg"] == "give a number (got 'heavy')"
    # The list above names each field by the label the user saw, and links to it.
    assert len(page.listed) == 4
    for link, text in page.listed:
        field = link.removeprefix("#patient-")
        assert text == f"{page.labels[link[1:]]}: {page.errors[field]}"
    assert "max_rate" not in refused.get_data(as_text=True)
    assert "height_cm" not in " ".join(text for _link, text in page.listed)
    # What was typed stays; nothing was written.
    assert page.values["family_name"] == "Okafor" and page.values["height_cm"] == "450"
    assert page.values["weight_kg"] == "heavy"
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Patient)) == 0


def test_a_refused_center_names_every_bad_day_and_field_at_once(app, db_session, make_user):
    from app.models import Center
    from tests.web.test_center_pages import new_center_form

    admin = logged_in(app, make_user("admin"))
    fields = new_center_form(admin) | {
        "name": "",
        "closes_at_0": "",
        "opens_at_3": "25:00",
        "nurses_4": "0",
        "chair_count": "lots",
    }
    refused = admin.post("/admin/centers/new", data=fields)
    assert refused.status_code == 422
    page = seen(refused)
    assert page.errors == {
        "name": "required",
        "closes_at_0": "required",
        "opens_at_3": "give a time as HH:MM (got '25:00')",
        "nurses_4": "must be at least 1 (got 0)",
        "chair_count": "give a whole number from 0 to 200 (got 'lots')",
    }
    assert [text for _link, text in page.listed] == [
        "Monday: closes at: required",
        "Thursday: opens at: give a time as HH:MM (got '25:00')",
        "Friday: infusion nurses on shift: must be at least 1 (got 0)",
        "Chairs to create: give a whole number from 0 to 200 (got 'lots')",
        "Name: required",
    ]
    assert page.values["opens_at_3"] == "25:00"
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Center)) == 0
