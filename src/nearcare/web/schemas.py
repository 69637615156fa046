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


# Form field -> what to tell a person when the model refuses it (the page never repeats the input).
_FORM_MESSAGES = {
    "access": "Say whether the defibrillator is public or restricted",
    "hours": "Enter the hours it is available, for example 24/7 (at most 120 characters)",
    "lat": "Enter the latitude as a number between -90 and 90",
    "lon": "Enter the longitude as a number between -180 and 180",
    "postcode": "Enter a postcode in letters, digits and spaces, for example LE15 6AB",
}
LOCATION_NEEDED = "Enter a postcode, or a latitude and longitude"


def report_from_form(form: dict[str, str]) -> tuple[DefibReport | None, dict[str, str]]:
    """The report a page form describes, or the form's errors by field id (the model decides which)."""
    fields = {
        "lat": form["lat"].strip() or None,
        "lon": form["lon"].strip() or None,
        "postcode": form["postcode"].strip() or None,
        "access": form["access"] or None,
        "hours": form["hours"].strip(),
        "looks_registered": {"yes": True, "no": False}.get(form["registered"]),
        "note": form["note"].strip()[:300] or None,
    }
    try:
        return DefibReport.model_validate(fields), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for problem in exc.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "postcode"
            errors.setdefault(field if field in _FORM_MESSAGES else "postcode", _FORM_MESSAGES.get(field, ""))
        return None, errors


def form_error(exc: InputError) -> tuple[str, str]:
    """The form field and message for a report the store refused."""
    if exc.field in ("hours", "access"):
        return exc.field, exc.problem
    if exc.field is None and "location is needed" in exc.problem:
        return "postcode", LOCATION_NEEDED
    return ("postcode" if exc.field in ("postcode", None) else "lat"), exc.problem
