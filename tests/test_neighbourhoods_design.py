"""Neighbourhood design speed (#19): nearcare answers spopt's "which areas can move?" itself, by a
graph search instead of sparse-matrix slicing; the answer must be spopt's, in spopt's order, on the
demo's real contiguity and any regions (contiguous or not) and thresholds Hypothesis draws."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nearcare.neighbourhoods import _areas, _contiguity, _FastMoves


@pytest.fixture(scope="module")
def unit(demo):
    from nearcare.store import Store

    with Store(demo.store_path, read_only=True) as store:
        areas = _areas(store)
    part = areas[areas["sub_icb_code"] == areas["sub_icb_code"].mode()[0]].reset_index(drop=True)
    return part, _contiguity(part)


def test_movable_areas_are_spopts(unit):
    from spopt.region.maxp import _pick_move_area

    part, weights = unit
    people = part["population"].to_numpy(float)
    fast = _FastMoves()

    @settings(max_examples=60, deadline=None, derandomize=True)
    @given(st.integers(2, 40), st.floats(0, 20_000), st.integers(0, 2**32 - 1))
    def check(regions, threshold, seed):
        labels = np.random.default_rng(seed).integers(1, regions + 1, len(part))
        lists = {k: np.flatnonzero(labels == k).tolist() for k in np.unique(labels)}
        totals = {k: people[v].sum() for k, v in lists.items()}
        args = (list(labels), lists, totals, people, weights, None, threshold)
        assert [int(a) for a in fast(*args)] == [int(a) for a in _pick_move_area(*args)]

    check()
