"""Closure ranking evaluates each closure on the LSOAs it touches alone (issue #16 item 3, #19).

Property: for any site closed alone (cut from the context of its kind, as ranking does), in any context (crow-fly over LLR, the Rutland road network,
and real-style LSOA registrations), the scores and the per-practice table from the cut context equal
those of a whole-area evaluation to float precision, and patients before = after + unplaced.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import RUTLAND_PRACTICES, with_registrations

from nearcare.scenarios import LocalContexts, Scenario, closure_scores, evaluate, load_context
from nearcare.store import Store


@pytest.fixture(scope="module")
def worlds(demo, tmp_path_factory):
    with Store(demo.store_path, read_only=True) as store:
        contexts = {mode: load_context(store, mode=mode) for mode in ("crowfly", "drive")}
        codes = {
            kind: store.df("SELECT code FROM sites WHERE kind = ? ORDER BY code", [kind])["code"].tolist()
            for kind in ("gp", "pharmacy")
        }
    single = lambda i, lsoa: [RUTLAND_PRACTICES[i % 4]] if i % 3 == 0 else RUTLAND_PRACTICES  # noqa: E731
    folder = tmp_path_factory.mktemp("local-registrations")
    with Store(with_registrations(demo, folder, single, seed=5), read_only=True) as store:
        contexts["registrations"] = load_context(store, mode="drive")
    # Ranking cuts each closure from the context of its own kind of site (the others emptied).
    return {
        mode: (ctx, {kind: LocalContexts(ctx, kind) for kind in ("gp", "pharmacy")})
        for mode, ctx in contexts.items()
    }, codes


def _same(local: dict, whole: dict) -> None:
    assert local.keys() == whole.keys()
    for key, value in whole.items():
        if isinstance(value, float):
            assert local[key] == pytest.approx(value, rel=1e-12, abs=1e-9, nan_ok=True), key
        else:
            assert local[key] == value, key


@pytest.mark.parametrize("mode", ["crowfly", "drive", "registrations"])
def test_a_closure_evaluated_locally_scores_as_on_the_whole_area(worlds, mode):
    (contexts, codes) = worlds
    ctx, local = contexts[mode]
    # Pharmacy scores need walking times to pharmacies, which every context here has.
    drawn = st.one_of(
        st.tuples(st.just("gp"), st.sampled_from(codes["gp"])),
        st.tuples(st.just("pharmacy"), st.sampled_from(codes["pharmacy"])),
    )

    @settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(drawn)
    def check(kind_code):
        kind, code = kind_code
        cut, codes_of = local[kind].context(code), local[kind]
        _same(codes_of.closure_scores(kind, code), closure_scores(ctx, kind, code))
        # The cut context holds codes as integers; the closure is the same site.
        part = evaluate(cut, Scenario(f"close {code}", close=[codes_of.site_codes.get_loc(code)]))
        whole = evaluate(ctx, Scenario(f"close {code}", close=[code]))
        part.practices["practice_code"] = codes_of.site_codes[part.practices["practice_code"]]
        columns = ["practice_code", "patients_before", "patients_lost", "patients_gained", "patients_after"]
        pd.testing.assert_frame_equal(
            part.practices[columns], whole.practices[columns], rtol=1e-12, check_dtype=False
        )
        assert part.unplaced_patients == pytest.approx(whole.unplaced_patients, rel=1e-12, abs=1e-9)
        # Patients before = after + unplaced.
        assert part.practices["patients_before"].sum() == pytest.approx(
            part.practices["patients_after"].sum() + part.unplaced_patients, abs=1e-6
        )
        # An LSOA left out of the cut context has nothing that changes in the whole one.
        changed = whole.lsoas.loc[whole.lsoas["change_minutes"] != 0, "lsoa21_code"]
        assert set(changed) <= set(codes_of.lsoa_codes[cut.areas.index])

    check()


def test_the_cut_context_is_smaller_than_the_area(worlds):
    """Closing one practice touches only the LSOAs within reach of it, far fewer than LLR's 634."""
    (contexts, codes) = worlds
    ctx, local = contexts["crowfly"]
    sizes = np.array([len(local["pharmacy"].context(code).areas) for code in codes["pharmacy"][:20]])
    assert (sizes < len(ctx.areas)).all() and sizes.max() > 0


@pytest.mark.parametrize("kind", ["gp", "pharmacy"])
def test_a_site_in_no_travel_time_scores_as_on_the_whole_area(worlds, kind):
    """A site that is not located (in no pair, no flow, nearest to none) is still ranked: it touches nothing."""
    (contexts, _) = worlds
    ctx, local = contexts["crowfly"]
    code = "NOT-LOCATED"
    assert len(local[kind].context(code).areas) == 0
    _same(local[kind].closure_scores(kind, code), closure_scores(ctx, kind, code))
