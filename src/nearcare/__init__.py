"""nearcare: plan primary care and neighbourhood health services in England from open data.

Start with ``nearcare.open(path)``, which returns a :class:`~nearcare.project.Project` whose methods
return DataFrames (see ``docs/API.md``). The store-free kernels work on frames and arrays alone:

- ``e2sfca(pairs, demand, supply, Catchment(...))``: enhanced two-step floating catchment access;
- ``concentration_index(y, weights, deprivation_order)``: the concentration index and its SE;
- ``pairs_within(network, origins, destinations, max_minutes)``: travel times within a cutoff;
- ``exact_cover(weights, covers, k)``: the maximal covering location problem, solved exactly;
- ``evaluate(context, Scenario(...))``: a scenario's before and after from a loaded context.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from nearcare._errors import InputError, StoreError
from nearcare._version import __version__
from nearcare.project import Project, import_kinds, open

if TYPE_CHECKING:
    from nearcare.access import Catchment, e2sfca
    from nearcare.defib import exact_cover
    from nearcare.equity import concentration_index
    from nearcare.network.search import pairs_within
    from nearcare.scenarios import Merge, NewSite, Scenario, evaluate

__all__ = [
    "Catchment",
    "InputError",
    "Merge",
    "NewSite",
    "Project",
    "Scenario",
    "StoreError",
    "__version__",
    "concentration_index",
    "e2sfca",
    "evaluate",
    "exact_cover",
    "import_kinds",
    "open",
    "pairs_within",
]

# The kernels load SciPy, pyproj and PuLP: they are imported on first use (PEP 562), so that
# `import nearcare` and every CLI command start fast.
_KERNELS = {
    "Catchment": "nearcare.access",
    "e2sfca": "nearcare.access",
    "concentration_index": "nearcare.equity",
    "pairs_within": "nearcare.network.search",
    "exact_cover": "nearcare.defib",
    "evaluate": "nearcare.scenarios",
    "Scenario": "nearcare.scenarios",
    "Merge": "nearcare.scenarios",
    "NewSite": "nearcare.scenarios",
}


def __getattr__(name: str) -> object:
    if name in _KERNELS:
        return getattr(importlib.import_module(_KERNELS[name]), name)
    raise AttributeError(f"module 'nearcare' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
