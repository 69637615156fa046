"""Atlas: where the services are, who lives where, and their deprivation, per sub-ICB location."""

from __future__ import annotations

import pandas as pd

from nearcare.store import Store


def sub_icb_summary(store: Store) -> pd.DataFrame:
    """Per sub-ICB location, and for the whole area: population, practices, workforce and services.

    Patients per GP FTE counts only practices with both a list size and a GP FTE figure.
    Pharmacies, dentists and opticians are counted where they stand (their LSOA's sub-ICB); those
    without coordinates have a row of their own, so that the totals hold every organisation.
    """
    store.require("small_areas", "run `nearcare build --area CODE` first")
    frame = store.df(
        """
        WITH areas AS (
            SELECT sub_icb_code, any_value(sub_icb_name) AS sub_icb_name, count(*) AS lsoas,
                   sum(population) AS population
            FROM small_areas GROUP BY ALL
        ), gp AS (
            SELECT sub_icb_code, count(*) AS gp_practices, sum(patients) AS registered_patients,
                   sum(gp_fte) AS gp_fte,
                   sum(patients) FILTER (WHERE gp_fte > 0) / nullif(sum(gp_fte) FILTER (WHERE patients IS NOT NULL), 0)
                       AS patients_per_gp_fte
            FROM practices GROUP BY ALL
        ), services AS (
            SELECT coalesce(sub_icb_code, 'not placed') AS sub_icb_code,
                   count(*) FILTER (WHERE kind = 'pharmacy') AS pharmacies,
                   count(*) FILTER (WHERE kind = 'dentist') AS dental_practices,
                   count(*) FILTER (WHERE kind = 'optometrist') AS opticians_2014
            FROM sites GROUP BY ALL
        )
        SELECT coalesce(a.sub_icb_code, s.sub_icb_code) AS sub_icb_code,
               coalesce(a.sub_icb_name, 'No coordinates, so no sub-ICB') AS sub_icb_name,
               coalesce(a.lsoas, 0) AS lsoas, a.population,
               coalesce(gp.gp_practices, 0) AS gp_practices, gp.registered_patients, gp.gp_fte,
               gp.patients_per_gp_fte,
               coalesce(s.pharmacies, 0) AS pharmacies,
               1e4 * coalesce(s.pharmacies, 0) / nullif(a.population, 0) AS pharmacies_per_10k,
               coalesce(s.dental_practices, 0) AS dental_practices,
               coalesce(s.opticians_2014, 0) AS opticians_2014
        FROM areas a LEFT JOIN gp USING (sub_icb_code) FULL JOIN services s USING (sub_icb_code)
        ORDER BY a.sub_icb_code IS NULL, 1
        """
    )
    total = {
        "sub_icb_code": "All",
        "sub_icb_name": "Whole area",
        **{
            c: frame[c].sum()
            for c in (
                "lsoas",
                "population",
                "gp_practices",
                "registered_patients",
                "gp_fte",
                "pharmacies",
                "dental_practices",
                "opticians_2014",
            )
        },
    }
    overall = store.df(
        "SELECT sum(patients) FILTER (WHERE gp_fte > 0) / nullif(sum(gp_fte) FILTER (WHERE patients IS NOT NULL), 0) AS r "
        "FROM practices"
    )
    total["patients_per_gp_fte"] = overall["r"].iloc[0]
    total["pharmacies_per_10k"] = (
        1e4 * total["pharmacies"] / total["population"] if total["population"] else None
    )
    frame["pharmacies_per_10k"] = frame["pharmacies_per_10k"].astype(float)
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def imd_profile(store: Store) -> pd.DataFrame:
    """Population and LSOAs in each national IMD 2025 decile (1 = most deprived 10% in England)."""
    return store.df(
        "SELECT imd_decile, count(*) AS lsoas, sum(population) AS population FROM small_areas "
        "WHERE imd_decile IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
