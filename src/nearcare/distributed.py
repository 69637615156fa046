"""Run independent pieces of work (partitions) on a Dask cluster, or in local processes.

``run(function, items, scheduler=...)`` maps ``function`` over ``items`` and returns the results
in order. With ``scheduler`` (``tcp://host:8786``, or a ``distributed.Client``/``LocalCluster``)
the items go to that dask.distributed cluster as one task each; without it they run here, in
``workers`` local processes (one: in this process). The results are the same either way: each
task is a pure function of its inputs.

What a worker needs
    nearcare and its dependencies installed (the same version as the client: the functions are
    sent by reference), and nothing else: each task carries its inputs as arrays (a partition's
    sub-network and its snapped points, nearcare.network.partition.Task), never the DuckDB store,
    which stays with the client. Results (frames of pairs) come back to the client, which stores
    them. Peak memory per worker is that of the largest partition it runs.

Used for travel times per partition (``nearcare travel-times --scheduler ADDRESS``;
``Project.travel_times(scheduler=...)``), closure-ranking batches (``nearcare scenario rank
--scheduler ADDRESS``: each task carries the cut of the scenario context its closures touch) and
the equity league table's units (``nearcare equity --by icb --scheduler ADDRESS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run(
    function: Callable[[T], R], items: Sequence[T], *, scheduler: Any = None, workers: int = 1
) -> list[R]:
    """``[function(item) for item in items]``, on the Dask cluster at ``scheduler`` if given."""
    items = list(items)
    if scheduler is not None:
        return _on_dask(function, items, scheduler)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    # lazy: multiprocessing contexts only when processes are started
    import multiprocessing as mp

    with ProcessPoolExecutor(min(workers, len(items)), mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(function, items))


def _on_dask(function: Callable[[T], R], items: list[T], scheduler: Any) -> list[R]:
    try:
        # lazy: dask is needed only for cluster runs
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise RuntimeError("--scheduler needs dask.distributed (pip install 'dask[distributed]')") from exc
    if isinstance(scheduler, Client):
        return _gather(scheduler, function, items)
    with Client(scheduler) as client:  # an address or a (Local)Cluster object
        return _gather(client, function, items)


def _gather(client: Any, function: Callable[[T], R], items: list[T]) -> list[R]:
    # pure=False: every item is its own task even where two hash alike.
    futures = client.map(function, items, pure=False)
    return list(client.gather(futures))


def completed(
    function: Callable[[T], R], items: Iterable[T], *, scheduler: Any, in_flight: int = 8
) -> Iterator[tuple[int, R]]:
    """``(position, function(item))`` on the Dask cluster at ``scheduler``, as tasks finish.

    ``items`` is read lazily and at most ``in_flight`` tasks are out at once, so a client that
    builds large task inputs (closure-ranking batches) holds only a few of them at a time.
    """
    try:
        # lazy: dask is needed only for cluster runs
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise RuntimeError("--scheduler needs dask.distributed (pip install 'dask[distributed]')") from exc
    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    pending = iter(enumerate(items))
    position: dict[Any, tuple[int, Any]] = {}
    running = as_completed()

    def send() -> bool:
        for i, item in pending:
            # Scattered: the input goes straight to a worker, not through the scheduler's graph.
            data = client.scatter(item, hash=False)
            future = client.submit(function, data, pure=False)
            position[future.key] = (i, data)
            running.add(future)
            return True
        return False

    try:
        while len(position) < in_flight and send():
            pass
        for future in running:
            i, data = position.pop(future.key)
            yield i, future.result()
            future.release()
            data.release()
            send()  # one in, for the one out
    finally:
        if own:
            client.close()


def runner(scheduler: Any = None, workers: int = 1) -> Callable[[Callable[[T], R], list[T]], list[R]]:
    """``run`` with the cluster fixed, in the shape ``partition.partitioned_pairs(run=...)`` takes."""
    return lambda function, items: run(function, items, scheduler=scheduler, workers=workers)
