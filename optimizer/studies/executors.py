"""Run independent jobs locally or on a Dask cluster (sweep points, backtest windows) with the same results."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hashpivot.models.errors import ConfigError


def run_jobs(fn: Callable[..., Any], shared: Sequence[Any], items: Sequence[Any], executor: str = "local",
             scheduler: str | None = None, progress: Callable[[int, int], None] | None = None) -> list[Any]:
    """`[fn(*shared, item) for item in items]`, in order. With executor "dask" the shared arguments are
    broadcast once and the items run on a cluster: `scheduler`'s address, or a 2-worker LocalCluster."""
    if executor == "local":
        out = []
        for i, item in enumerate(items):
            out.append(fn(*shared, item))
            if progress is not None:
                progress(i + 1, len(items))
        return out
    if executor != "dask":
        raise ConfigError(f"--executor {executor!r}: must be local or dask")
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None if scheduler else LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        shared_f = client.scatter(list(shared), broadcast=True)
        futures = [client.submit(fn, *shared_f, item, pure=False) for item in items]
        for done, _ in enumerate(as_completed(futures), start=1):
            if progress is not None:
                progress(done, len(items))
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
