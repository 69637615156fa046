"""Property test: random scenarios on the demo store reconcile, close what they close, and say what the tables say.

Hypothesis draws closures (practices with and without patient flows, pharmacies), mergers (chains
included, in any order, keeping or closing the site), and openings, in both modes (crow-fly over
LLR, the Rutland road network), and on the road network with an LSOA registration file imported
(some LSOAs registered at one practice alone, so closing it leaves them to the choice model). Impossible mergers (a cycle, a practice merging twice, a merger
into a closing practice) must be refused with the [[merge]] entry named.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import with_registrations

from nearcare import InputError
from nearcare.geo import to_bng
from nearcare.scenarios import Merge, NewSite, Scenario, evaluate, load_context, new_site_pairs
from nearcare.store import Store

RUTLAND_PRACTICES = ["C82010", "C82044", "C82077", "C82649"]
# Elsewhere in LLR: C82007 not geocoded (no flows in any mode); the rest off the Rutland road network,
# so without flows in drive mode and with them crow-fly.
OTHER_PRACTICES = ["C82007", "C82124", "C82001", "C82002", "C82038"]
NEW_SITES = [
    ("NEWGP1", "gp", 52.713, -0.666, {"gp_fte": 6.0}),
    ("NEWGP2", "gp", 52.668, -0.728, {"list_size": 5000.0}),
    ("NEWPH1", "pharmacy", 52.589, -0.722, {}),
]
MODES = ["crowfly", "drive"]
CONTEXTS = [*MODES, "registrations"]  # the last: drive, with real-style LSOA registrations


@pytest.fixture(scope="module")
def world(demo, tmp_path_factory):
    """Each mode's context, and travel times to every candidate new site, loaded once for the module."""
    sites = []
    for code, kind, lat, lon, capacity in NEW_SITES:
        e, n = to_bng(np.array([lon]), np.array([lat]))
        sites.append(NewSite(code, code, kind, float(e[0]), float(n[0]), **capacity))
    with Store(demo.store_path, read_only=True) as store:
        contexts = {mode: load_context(store, mode=mode) for mode in MODES}
        pairs = {mode: new_site_pairs(store, contexts[mode], Scenario("all", open=sites)) for mode in MODES}
    # One LSOA in three registered at a single practice: closing it leaves them to the choice model.
    single = lambda i, lsoa: [RUTLAND_PRACTICES[i % 4]] if i % 3 == 0 else RUTLAND_PRACTICES  # noqa: E731
    with Store(
        with_registrations(demo, tmp_path_factory.mktemp("registrations"), single, seed=11), read_only=True
    ) as store:
        contexts["registrations"] = load_context(store, mode="drive")
        assert not contexts["registrations"].model.modelled
    pairs["registrations"] = pairs["drive"]
    pharmacies = [*sorted(set(contexts["drive"].pairs[("walk", "pharmacy")]["destination_id"]))[:6], "FH895"]
    return contexts, pairs, sites, pharmacies


@st.composite
def scenarios(draw, pharmacies: list[str], sites: list[NewSite]):
    """A valid scenario: mergers go forward along a random order (so chains, never cycles)."""
    practices = draw(st.permutations(RUTLAND_PRACTICES + OTHER_PRACTICES))
    merges, froms = [], set()
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(practices) - 2))
        j = draw(st.integers(i + 1, len(practices) - 1))
        if practices[i] not in froms:
            froms.add(practices[i])
            merges.append(Merge(practices[i], practices[j], draw(st.booleans())))
    merges = draw(st.permutations(merges))  # chains listed in any order
    involved = froms | {m.into_code for m in merges}
    close = draw(
        st.lists(
            st.sampled_from([p for p in practices if p not in involved] + pharmacies), max_size=4, unique=True
        )
    )
    opened = draw(st.lists(st.sampled_from(sites), max_size=2, unique_by=lambda s: s.code))
    return Scenario("random", close=close, merges=list(merges), open=opened)


def _subset(pairs, scenario):
    return pairs[pairs["destination_id"].isin([s.code for s in scenario.open])] if scenario.open else None


@pytest.mark.parametrize("mode", CONTEXTS)
def test_random_scenarios_reconcile_and_match_their_tables(world, mode):
    contexts, pairs, sites, pharmacies = world
    ctx = contexts[mode]

    @settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
    @given(scenarios(pharmacies, sites))
    def check(scenario):
        result = evaluate(ctx, scenario, new_site_pairs=_subset(pairs[mode], scenario))
        practices = result.practices.set_index("practice_code")
        # Patients before = after + unplaced, overall and practice by practice.
        assert practices["patients_before"].sum() == pytest.approx(
            practices["patients_after"].sum() + result.unplaced_patients, abs=1e-6
        )
        assert np.allclose(
            practices["patients_after"],
            practices["patients_before"]
            + practices["merged_patients"]
            - practices["patients_lost"]
            + practices["patients_gained"],
            atol=1e-6,
        )
        assert (practices["patients_after"] >= -1e-6).all()
        # No closed site, and no practice that merged away, keeps patients.
        gone = [c for c in {*scenario.close, *(m.from_code for m in scenario.merges)} if c in practices.index]
        assert np.allclose(practices.loc[gone, "patients_after"], 0, atol=1e-6)
        closed_practices = [c for c in scenario.close if c in practices.index]
        displaced = practices.loc[closed_practices, "patients_before"].sum()
        assert result.displaced_patients == pytest.approx(displaced)
        assert result.unplaced_patients <= displaced + 1e-6
        if not [s for s in scenario.open if s.kind == "gp"]:
            # Without a new practice, everyone who moves was displaced: moved + unplaced = displaced.
            assert result.moved_patients + result.unplaced_patients == pytest.approx(displaced, abs=1e-6)
        # Closures only: nobody is nearer their nearest remaining site, and a remaining site within the
        # stored reach bounds the new minutes (crow-fly, one beyond it is measured too).
        if not scenario.open:
            for frame, kind in ((result.lsoas, "gp"), (result.pharmacy, "pharmacy")):
                assert (frame["after_minutes"] >= frame["before_minutes"] - 1e-9).all()
                for profile in ("walk", "drive"):
                    part = frame[frame["profile"] == profile].set_index("lsoa21_code")
                    stored = ctx.pairs[(profile, kind)]
                    remaining = (
                        stored[~stored["destination_id"].isin(scenario.closed_sites)]
                        .groupby("origin_id")["minutes"]
                        .min()
                        .reindex(part.index)
                    )
                    bounded = remaining.notna().to_numpy()
                    assert (
                        part["after_minutes"].to_numpy()[bounded] <= remaining.to_numpy()[bounded] + 1e-9
                    ).all()
                    if ctx.mode == "crowfly":  # crow-fly, the nearest site left is found however far
                        assert np.isfinite(part["after_minutes"]).all()
        # The headline says what the tables say.
        lsoas = result.lsoas
        newly = {}
        for profile, threshold in (("walk", 20.0), ("drive", 15.0)):
            part = lsoas[lsoas["profile"] == profile]
            newly[profile] = set(
                part.loc[
                    (part["before_minutes"] <= threshold) & (part["after_minutes"] > threshold), "lsoa21_code"
                ]
            )
        people = ctx.areas["population"]
        walk, drive = people[list(newly["walk"])].sum(), people[list(newly["drive"])].sum()
        distinct = people[list(newly["walk"] | newly["drive"])].sum()
        assert result.people_newly_beyond("GP practice") == pytest.approx(
            {"walk": walk, "drive": drive, "walk or drive": distinct}
        )
        moved = practices["patients_gained"].sum()
        unplaced = result.unplaced["patients"].sum()
        assert unplaced == pytest.approx(practices["patients_unplaced"].sum(), abs=1e-6)
        headline = result.headline()
        assert headline.startswith(f"{moved:,.0f} patients move to another practice")
        assert (
            f"{distinct:,.0f} people newly beyond a GP threshold ({walk:,.0f} by 20 minutes' walk, "
            f"{drive:,.0f} by 15 minutes' drive" in headline
        )
        if closed_practices:
            assert (
                f"{displaced:,.0f} lose their practice, of whom {unplaced:,.0f} have no practice" in headline
            )

    check()


@pytest.mark.parametrize("mode", MODES)
def test_impossible_mergers_are_refused(world, mode):
    contexts, _, _, _ = world
    ctx = contexts[mode]
    practices = st.sampled_from(RUTLAND_PRACTICES + OTHER_PRACTICES)

    @settings(max_examples=20, deadline=None, derandomize=True)
    @given(
        st.lists(practices, min_size=2, max_size=4, unique=True),
        st.sampled_from(["cycle", "twice", "into closed"]),
        st.booleans(),
    )
    def check(chain, flaw, keep_site):
        merges = [Merge(a, b, keep_site) for a, b in pairwise(chain)]
        close = []
        if flaw == "cycle":
            merges.append(Merge(chain[-1], chain[0], keep_site))
        elif flaw == "twice":
            merges.append(Merge(chain[0], chain[-1] if len(chain) > 2 else chain[0], keep_site))
        else:
            close = [chain[-1]]
        with pytest.raises(InputError, match=r"scenario \[\[merge\]\] \d"):
            evaluate(ctx, Scenario("flawed", close=close, merges=merges))

    check()
