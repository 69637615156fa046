"""E2SFCA against PySAL access, closed-form limits and hand-checked cases; equity indices against
brute force; proportionate allocation properties."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nearcare import InputError
from nearcare.access import Catchment, e2sfca, gaussian_decay, gravity_decay, step_decay
from nearcare.allocation import ALLOCATION_TOLERANCE, allocate
from nearcare.equity import concentration_index, fractional_rank, slope_index
from nearcare.need import deprivation_factor, deprivation_priority_weight


def random_case(seed: int, n_o: int = 80, n_d: int = 20, density: float = 0.5):
    rng = np.random.default_rng(seed)
    pairs = pd.DataFrame(
        [
            (f"o{i}", f"d{j}", rng.uniform(0, 40))
            for i in range(n_o)
            for j in range(n_d)
            if rng.random() < density
        ],
        columns=["origin_id", "destination_id", "minutes"],
    )
    demand = pd.Series(rng.integers(300, 3000, n_o).astype(float), index=[f"o{i}" for i in range(n_o)])
    supply = pd.Series(rng.uniform(0.5, 12, n_d), index=[f"d{j}" for j in range(n_d)])
    return pairs, demand, supply


def pysal(pairs, demand, supply, max_cost, weight_fn):
    from access import Access

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Access(
            demand_df=demand.rename("pop").rename_axis("geoid").reset_index(),
            demand_index="geoid",
            demand_value="pop",
            supply_df=supply.rename("doc").rename_axis("geoid").reset_index(),
            supply_index="geoid",
            supply_value="doc",
            cost_df=pairs,
            cost_origin="origin_id",
            cost_dest="destination_id",
            cost_name="minutes",
        )
        result = model.two_stage_fca(name="x", max_cost=max_cost, weight_fn=weight_fn)
    return result.iloc[:, 0].reindex(demand.index).fillna(0.0)


@pytest.mark.parametrize("decay", ["step", "gaussian", "gravity"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_e2sfca_agrees_with_pysal_access(decay, seed):
    pairs, demand, supply = random_case(seed)
    catchment = Catchment(30, decay)
    theirs = pysal(pairs, demand, supply, 30, lambda t: float(catchment.weight(np.array([t]))[0]))
    ours = e2sfca(pairs, demand, supply, catchment)
    assert np.abs(ours.to_numpy() - theirs.to_numpy()).max() < 1e-9


@pytest.mark.parametrize(
    ("name", "factory"),
    [
        ("step", lambda: step_decay(30)),
        ("gaussian", lambda: gaussian_decay(30)),
        ("gravity", lambda: gravity_decay(1.5)),
    ],
)
def test_built_in_decays_by_name_and_by_factory_agree(name, factory):
    minutes = np.linspace(0, 40, 401)
    by_name, by_factory = Catchment(30, name), Catchment(30, factory())
    assert np.array_equal(by_name.weight(minutes), by_factory.weight(minutes))
    assert by_name.describe() == by_factory.describe()


def test_any_function_of_minutes_is_a_decay():
    """A user's own decay (here exponential) gives what PySAL access gives with the same function."""
    pairs, demand, supply = random_case(4)
    catchment = Catchment(30, lambda minutes: np.exp(-0.1 * minutes))
    weights = catchment.weight(np.array([0.0, 10.0, 30.0, 30.5]))
    assert weights == pytest.approx([1.0, np.exp(-1.0), np.exp(-3.0), 0.0])  # 0 beyond the catchment
    theirs = pysal(pairs, demand, supply, 30, lambda t: float(np.exp(-0.1 * t)))
    ours = e2sfca(pairs, demand, supply, catchment)
    assert np.abs(ours.to_numpy() - theirs.to_numpy()).max() < 1e-9
    assert "up to 30 minutes" in catchment.describe()
    with pytest.raises(InputError):
        Catchment(30, 0.5)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        Catchment(30, "linear")


def test_e2sfca_step_matches_pysal_own_step_function():
    from access import weights

    pairs, demand, supply = random_case(5)
    theirs = pysal(pairs, demand, supply, 30, weights.step_fn({10: 1.0, 20: 0.68, 30: 0.22}))
    ours = e2sfca(pairs, demand, supply, Catchment(30))  # default zones: thirds with Luo & Qi's weights
    assert np.abs(ours.to_numpy() - theirs.to_numpy()).max() < 1e-9


def test_e2sfca_on_real_demo_costs(demo_store):
    """Same check on the real LLR crow-fly cost table, populations and GP FTE."""
    from nearcare.access import gp_supply

    pairs = demo_store.df(
        "SELECT origin_id, destination_id, minutes FROM travel_times WHERE profile = 'drive' "
        "AND mode = 'crowfly' AND destination_kind = 'gp'"
    )
    demand = demo_store.df("SELECT lsoa21_code, population FROM small_areas").set_index("lsoa21_code")[
        "population"
    ]
    supply, _ = gp_supply(demo_store)
    catchment = Catchment(15)
    theirs = pysal(pairs, demand, supply, 15, lambda t: float(catchment.weight(np.array([t]))[0]))
    ours = e2sfca(pairs, demand, supply, catchment)
    assert np.abs(ours.to_numpy() - theirs.to_numpy()).max() < 1e-9
    stored = demo_store.df(
        "SELECT lsoa21_code, e2sfca FROM access WHERE kind = 'gp' AND profile = 'drive' AND mode = 'crowfly'"
    ).set_index("lsoa21_code")["e2sfca"]
    assert np.allclose(stored.reindex(ours.index).to_numpy(), 1000 * ours.to_numpy())


def test_hand_checked_example():
    # Areas A (1,000 people) and B (3,000); site X (2 FTE) is 4 min from A and 12 from B; site Y (1 FTE)
    # only 8 min from B. Zones of a 15-minute catchment: <=5 x1, <=10 x0.68, <=15 x0.22.
    pairs = pd.DataFrame(
        {"origin_id": ["A", "B", "B"], "destination_id": ["X", "X", "Y"], "minutes": [4, 12, 8]}
    )
    demand = pd.Series({"A": 1000.0, "B": 3000.0})
    supply = pd.Series({"X": 2.0, "Y": 1.0})
    r_x = 2 / (1000 * 1 + 3000 * 0.22)  # 2 / 1660
    r_y = 1 / (3000 * 0.68)  # 1 / 2040
    result = e2sfca(pairs, demand, supply, Catchment(15))
    assert result["A"] == pytest.approx(r_x)
    assert result["B"] == pytest.approx(0.22 * r_x + 0.68 * r_y)


def test_infinite_catchment_gives_total_supply_over_total_demand():
    pairs, demand, supply = random_case(3, density=1.0)
    everyone = Catchment(1e9, "step", ((1e9, 1.0),))
    result = e2sfca(pairs, demand, supply, everyone)
    assert np.allclose(result.to_numpy(), supply.sum() / demand.sum())


def test_weights_on_zone_bounds_belong_to_the_zone():
    catchment = Catchment(15)
    assert list(catchment.weight(np.array([0, 5, 5.0001, 10, 15, 15.0001]))) == [1, 1, 0.68, 0.68, 0.22, 0]
    with pytest.raises(InputError):
        Catchment(15, "step", ((10, 1), (5, 0.5)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), site=st.integers(0, 19), extra=st.floats(0.01, 50))
def test_adding_supply_never_lowers_access(seed, site, extra):
    pairs, demand, supply = random_case(seed, n_o=30, n_d=20)
    catchment = Catchment(30)
    before = e2sfca(pairs, demand, supply, catchment)
    more = supply.copy()
    more.iloc[site] += extra
    assert (e2sfca(pairs, demand, more, catchment) >= before - 1e-15).all()
    # A new site with its own pairs never lowers anyone's access either.
    rng = np.random.default_rng(seed)
    new_pairs = pd.DataFrame(
        {"origin_id": demand.index[:10], "destination_id": "new", "minutes": rng.uniform(0, 40, 10)}
    )
    after = e2sfca(
        pd.concat([pairs, new_pairs]), demand, pd.concat([supply, pd.Series({"new": extra})]), catchment
    )
    assert (after >= before - 1e-15).all()


# --- equity indices ---------------------------------------------------------------------------


def test_concentration_index_matches_individual_level_brute_force():
    rng = np.random.default_rng(8)
    y = rng.uniform(0, 5, 40)
    people = rng.integers(1, 30, 40)
    order = rng.permutation(40)  # deprivation rank of each area
    c, _ = concentration_index(y, people, order)
    # Brute force: one row per person, ranked by their area's deprivation; C = 2 cov(y, R) / mean(y).
    individual_y = np.repeat(y[np.argsort(order)], people[np.argsort(order)])
    n = len(individual_y)
    rank = (np.arange(1, n + 1) - 0.5) / n
    brute = 2 * np.mean((individual_y - individual_y.mean()) * (rank - 0.5)) / individual_y.mean()
    assert c == pytest.approx(brute, abs=1e-12)


def test_concentration_index_standard_error_for_unit_weights():
    """With equal weights the grouped formula is Kakwani et al.'s individual-level one, written out here."""
    rng = np.random.default_rng(9)
    y = rng.uniform(1, 4, 200)
    c, se = concentration_index(y, np.ones(200), np.arange(200))
    n, mu = 200, y.mean()
    rank = (np.arange(1, n + 1) - 0.5) / n
    q = np.cumsum(y) / (n * mu)
    a = (y / mu) * (2 * rank - 1 - c) + 2 - np.concatenate([[0], q[:-1]]) - q
    assert se == pytest.approx(np.sqrt((np.sum(a**2) / n - (1 + c) ** 2) / n), rel=1e-12)


def test_slope_index_against_linregress_and_lstsq():
    rng = np.random.default_rng(10)
    y = rng.normal(size=50)
    rank = fractional_rank(np.arange(50), np.ones(50))
    sii, low, high = slope_index(y, np.ones(50), rank)
    reference = stats.linregress(rank, y)
    t = stats.t.ppf(0.975, 48)
    assert (sii, low, high) == pytest.approx(
        (reference.slope, reference.slope - t * reference.stderr, reference.slope + t * reference.stderr)
    )
    w = rng.integers(1, 20, 50).astype(float)
    rank = fractional_rank(np.arange(50), w)
    design = np.column_stack([np.ones(50), rank]) * np.sqrt(w)[:, None]
    beta = np.linalg.lstsq(design, y * np.sqrt(w), rcond=None)[0]
    assert slope_index(y, w, rank)[0] == pytest.approx(beta[1])


def test_a_gradient_favouring_the_less_deprived_is_found():
    from nearcare.equity import equity_figures

    decile = np.repeat(np.arange(1, 11), 10)
    y = decile * 0.1 + np.random.default_rng(1).normal(0, 0.05, 100)  # more supply where less deprived
    figures = equity_figures("x", y, np.full(100, 1500.0), decile, decile)
    assert figures.finding == "holds" and figures.concentration_index > 0
    assert "inverse care law holds" in figures.verdict("GP access")
    assert equity_figures("x", -y + 2, np.full(100, 1500.0), decile, decile).finding == "reversed"
    assert (
        equity_figures("minutes", y, np.full(100, 1500.0), decile, decile, higher_is_better=False).finding
        == "reversed"
    )


# --- allocation ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    need=st.lists(st.floats(0, 1e4), min_size=1, max_size=30),
    units=st.floats(0, 1e5),
    floor=st.one_of(st.none(), st.floats(0, 50)),
    cap=st.one_of(st.none(), st.floats(0, 1e4)),
)
def test_allocation_sums_to_units_within_floors_and_caps(need, units, floor, cap):
    need = pd.Series(need, index=[f"t{i}" for i in range(len(need))])
    n = len(need)
    tol = ALLOCATION_TOLERANCE
    with_need = int((need > 0).sum())
    # Targets with no need get only their floor, so capped targets with need must hold the rest.
    most = (
        np.inf
        if cap is None
        else (cap * with_need + (floor or 0) * (n - with_need) if with_need else cap * n)
    )
    feasible = (
        (floor or 0) * n <= units + tol
        and (cap is None or cap * n >= units - tol)
        and most >= units - tol
        and (floor is None or cap is None or floor <= cap)
    )
    if not feasible:
        with pytest.raises(InputError):
            allocate(need, units, floors=floor, caps=cap)
        return
    shares = allocate(need, units, floors=floor, caps=cap)
    assert shares.sum() == pytest.approx(units, rel=1e-9, abs=1e-6)
    assert (shares >= (floor or 0) - 1e-6).all()
    if cap is not None:
        assert (shares <= cap + 1e-6).all()


def test_units_beyond_the_capped_targets_with_need_are_refused():
    """Found by Hypothesis: a target with no need cannot take units that the capped ones cannot hold."""
    with pytest.raises(InputError, match="at most 1 of the 2 units"):
        allocate(pd.Series({"a": 0.0, "b": 1.0}), 2.0, caps=1.0)


def test_allocation_with_a_vanishingly_small_need():
    """Found by Hypothesis: the last units go to a target whose need is a subnormal number."""
    shares = allocate(pd.Series([1.0] * 9 + [5e-324]), 17143.0, floors=1.5, caps=1899.0)
    assert shares.sum() == pytest.approx(17143.0) and shares.iloc[-1] == pytest.approx(52.0)


def test_allocation_is_proportional_where_no_bound_binds():
    need = pd.Series({"a": 1.0, "b": 3.0, "c": 6.0})
    assert allocate(need, 100).to_dict() == pytest.approx({"a": 10, "b": 30, "c": 60})
    capped = allocate(need, 100, caps=50)
    assert capped.to_dict() == pytest.approx({"a": 12.5, "b": 37.5, "c": 50})
    floored = allocate(need, 100, floors=20)
    assert floored["a"] == pytest.approx(20) and floored["b"] / floored["c"] == pytest.approx(0.5)


def test_demo_equity_and_allocation(demo, demo_store):
    from nearcare.equity import lsoa_equity, practice_equity

    llr = lsoa_equity(demo_store, kind="gp", profile="drive", mode="crowfly")
    assert llr.areas == 634 and llr.deciles.index.tolist() == list(range(1, 11))
    rutland = lsoa_equity(demo_store, kind="gp", profile="drive", mode="drive")
    assert rutland.areas == 26
    practices = practice_equity(demo_store)
    assert practices.areas > 100
    # The README's finding: at practice level the inverse care law holds in LLR (C +0.115; see test_supply.py).
    assert practices.finding == "holds" and 0.10 < practices.concentration_index < 0.16
    allocations = demo_store.df("SELECT * FROM allocations WHERE target_kind = 'practices'")
    assert allocations["units"].sum() == pytest.approx(10)
    html = demo.report_path.read_text()
    assert (
        "Access and equity" in html
        and "Proportionate allocation" in html
        and "inverse care law" in html.lower()
    )


def test_need_factor_and_priority_weight_are_the_documented_ones():
    """README: need 1 + 0.05 x (5.5 - decile), 1.225 to 0.775 before scaling; harm priority
    1 + 0.1 x (10 - decile), 1.9 to 1, the middle (1.45) where the decile is missing."""
    deciles = pd.Series([1.0, 10.0, np.nan])
    assert list(deprivation_factor(deciles.to_numpy()[:2])) == pytest.approx([1.225, 0.775])
    assert list(deprivation_priority_weight(deciles)) == pytest.approx([1.9, 1.0, 1.45])
