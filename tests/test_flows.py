"""The choice model against a brute force, row by row (flows.choice_probabilities, flows.calibrate).

Both sum by integer codes (bincount) since England's ranking (issue #16): these check the sums
still mean what the Huff model says, on generated pairs with missing and zero list sizes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from nearcare.flows import ALPHAS, BETAS, calibrate, choice_probabilities

LSOAS = [f"E0100{i:04d}" for i in range(6)]
PRACTICES = [f"P{i}" for i in range(5)]


@st.composite
def choice_sets(draw):
    cells = draw(
        st.lists(
            st.tuples(st.sampled_from(LSOAS), st.sampled_from(PRACTICES)),
            min_size=1,
            max_size=25,
            unique=True,
        )
    )
    minutes = draw(st.lists(st.floats(0, 60), min_size=len(cells), max_size=len(cells)))
    pairs = pd.DataFrame(
        {"origin_id": [c[0] for c in cells], "destination_id": [c[1] for c in cells], "minutes": minutes}
    )
    sizes = draw(
        st.lists(st.one_of(st.just(np.nan), st.just(0.0), st.floats(1, 20_000)), min_size=5, max_size=5)
    )
    return pairs, pd.Series(sizes, index=PRACTICES)


def brute_probabilities(pairs: pd.DataFrame, size: pd.Series, alpha: float, beta: float) -> list[float]:
    utility = []
    for row in pairs.itertuples():
        u = size[row.destination_id] ** alpha * math.exp(-beta * row.minutes)
        utility.append(u if math.isfinite(u) else 0.0)
    totals: dict[str, float] = {}
    for row, u in zip(pairs.itertuples(), utility, strict=True):
        totals[row.origin_id] = totals.get(row.origin_id, 0.0) + u
    return [
        u / totals[row.origin_id] if totals[row.origin_id] > 0 else 0.0
        for row, u in zip(pairs.itertuples(), utility, strict=True)
    ]


@settings(max_examples=150, deadline=None)
@given(choice_sets(), st.sampled_from(ALPHAS), st.sampled_from(BETAS))
def test_choice_probabilities_are_the_huff_shares(case, alpha, beta):
    pairs, size = case
    p = choice_probabilities(pairs, size, alpha, beta)
    assert list(p.index) == list(pairs.index)
    np.testing.assert_allclose(
        p.to_numpy(), brute_probabilities(pairs, size, alpha, beta), rtol=1e-12, atol=1e-15
    )
    # Each LSOA's shares add up to 1, or to 0 where no practice in reach draws anyone.
    by_lsoa = p.groupby(pairs["origin_id"]).sum()
    assert ((by_lsoa.sub(1).abs() < 1e-12) | (by_lsoa == 0)).all()


@settings(max_examples=60, deadline=None)
@given(choice_sets(), st.lists(st.one_of(st.just(np.nan), st.floats(0, 3000)), min_size=6, max_size=6))
def test_calibration_picks_the_grid_point_with_the_least_squared_error(case, people):
    pairs, size = case
    lists = size.dropna()
    lists = lists[lists.index.isin(pairs["destination_id"])]
    registered = pd.Series(people, index=LSOAS)
    model, flows = calibrate(pairs, registered, lists)
    errors = {}
    for alpha in ALPHAS:
        for beta in BETAS:
            p = brute_probabilities(pairs, lists.reindex(PRACTICES), alpha, beta)
            modelled = dict.fromkeys(lists.index, 0.0)
            for row, share in zip(pairs.itertuples(), p, strict=True):
                flow = registered[row.origin_id] * share
                if row.destination_id in modelled and not math.isnan(flow):
                    modelled[row.destination_id] += flow
            errors[alpha, beta] = sum((modelled[c] - lists[c]) ** 2 for c in lists.index)
    best = min(errors.values())
    # The chosen point is a least-squares one (ties may go either way).
    assert errors[model.alpha, model.beta] <= best * (1 + 1e-9) + 1e-9
    expected = np.array(brute_probabilities(pairs, lists.reindex(PRACTICES), model.alpha, model.beta))
    expected = registered.reindex(pairs["origin_id"]).to_numpy() * expected
    np.testing.assert_allclose(flows.to_numpy(), expected, rtol=1e-12, atol=1e-12)
