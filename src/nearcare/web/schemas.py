"""What the web app accepts: one pydantic model per request body, used by the JSON API and the page forms.

A defibrillator report is checked in two places only, each once: its shape here (access, hours given,
coordinates in range, postcode characters), and against the store by ``Project.report_defibrillator``
(place in England or a known postcode, hours that are valid ``opening_hours``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError

from nearcare._errors import InputError

MAX_SCENARIO_SITES = 20
CODE = r"^[A-Z0-9]{3,10}$"
Kind = Literal["gp", "pharmacy", "dentist", "optometrist"]


class MergeRequest(BaseModel):
    from_code: Annotated[str, Field(pattern=CODE, alias="from")]
    into: Annotated[str, Field(pattern=CODE)]
    keep_site: bool = True


class ScenarioRequest(BaseModel):
    close: list[Annotated[str, Field(pattern=CODE)]] = Field(
        default_factory=list, max_length=MAX_SCENARIO_SITES, description="Site codes to close"
    )
    merge: list[MergeRequest] = Field(
        default_factory=list, max_length=MAX_SCENARIO_SITES, description="Practices that join others"
    )
    mode: Literal["crowfly", "drive"] | None = None


class DefibReport(BaseModel):
    lat: float | None = Field(None, ge=-90, le=90, allow_inf_nan=False)
    lon: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False)
    postcode: Annotated[str, Field(max_length=10, pattern=r"^[A-Za-z0-9 ]+$")] | None = None
    access: Literal["public", "restricted"]
    hours: Annotated[str, Field(min_length=1, max_length=120)]
    looks_registered: bool | None = None
    note: Annotated[str, Field(max_length=300)] | None = None


# The report form's hours: simple choices, each a valid OpenStreetMap opening_hours value, or "other"
# with the person's own opening_hours (checked by the store like any report).
HOURS_CHOICES = {  # opening_hours -> what the form says
    "24/7": "Always: 24 hours, every day (for example an outdoor cabinet)",
    "Mo-Su 07:00-22:00": "Every day, 7am to 10pm",
    "Mo-Fr 08:00-18:00": "Weekdays, 8am to 6pm (for example an office or surgery)",
    "Mo-Sa 09:00-17:30": "Monday to Saturday, 9am to 5:30pm (for example a shop)",
}
HOURS_OTHER = "other"

# Form field -> what to tell a person when the model refuses it (the page never repeats the input).
_FORM_MESSAGES = {
    "access": "Say whether the defibrillator is public or restricted",
    "hours": "Choose when it is available",
    "hours_other": "Enter its hours as opening hours, for example Mo-Fr 09:00-17:00 (at most 120 characters)",
    "lat": "Tap the map where it is again, or enter its postcode",
    "lon": "Tap the map where it is again, or enter its postcode",
    "postcode": "Enter a postcode in letters, digits and spaces, for example LE15 6AB",
}
LOCATION_NEEDED = "Tap the map where it is, or enter its postcode"


def form_hours(form: dict[str, str]) -> tuple[str, str | None]:
    """The opening_hours a report form chose, and the field to blame if the store refuses them."""
    choice = form.get("hours", "")
    if choice in HOURS_CHOICES:
        return choice, "hours"
    if choice == HOURS_OTHER:
        return form.get("hours_other", "").strip(), "hours_other"
    return "", "hours"


def report_from_form(form: dict[str, str]) -> tuple[DefibReport | None, dict[str, str]]:
    """The report a page form describes, or the form's errors by field id (the model decides which)."""
    hours, hours_field = form_hours(form)
    fields = {
        "lat": form["lat"].strip() or None,
        "lon": form["lon"].strip() or None,
        "postcode": form["postcode"].strip() or None,
        "access": form["access"] or None,
        "hours": hours,
        "looks_registered": {"yes": True, "no": False}.get(form["registered"]),
        "note": form["note"].strip()[:300] or None,
    }
    errors: dict[str, str] = {}
    if fields["postcode"] is None and (fields["lat"] is None or fields["lon"] is None):
        errors["postcode"] = LOCATION_NEEDED  # said with the other problems, not after them
    if form.get("hours", "") not in (*HOURS_CHOICES, HOURS_OTHER):
        errors["hours"] = _FORM_MESSAGES["hours"]
    try:
        report = DefibReport.model_validate(fields)
    except ValidationError as exc:
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "postcode"
            if field == "hours":
                field = hours_field or "hours"
            if field in ("lat", "lon"):
                field = "postcode"  # the place is chosen on the map; the postcode is the field to fix
                errors.setdefault(field, _FORM_MESSAGES["lat"])
            errors.setdefault(field if field in _FORM_MESSAGES else "postcode", _FORM_MESSAGES.get(field, ""))
        return None, errors
    return (None, errors) if errors else (report, {})


def form_error(exc: InputError, form: dict[str, str]) -> tuple[str, str]:
    """The form field and message for a report the store refused."""
    if exc.field == "hours":
        return form_hours(form)[1] or "hours", exc.problem
    if exc.field == "access":
        return exc.field, exc.problem
    if exc.field is None and "location is needed" in exc.problem:
        return "postcode", LOCATION_NEEDED
    return "postcode", exc.problem
