"""Where the tiles of ``psirel predict --dask`` run: one after another in this process
(:class:`SyncExecutor`, ``sync``), or as tasks of a ``dask.distributed`` cluster
(:class:`DaskExecutor`: a ``LocalCluster`` of single-threaded worker processes, ``local[:N]``, a
running scheduler ``tcp://host:8786``, or a given client). :func:`make_executor` reads the
``--dask`` value. An executor's ``map`` yields ``(task, result, exception)`` as tiles finish; a
failing task is retried ``retries`` times first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import uuid
from collections.abc import Iterator

from psirel.errors import MissingExtra, PsirelError, first_line
from psirel.infer.tiling import TileTask, run_tile

CONNECT_TIMEOUT_S = 10.0  # waiting for a scheduler (and its first worker)
_LOCAL = re.compile(r"^local(?::(\d+))?$")
_ADDRESS = re.compile(r"^(tcp|tls|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?$")


class SyncExecutor:
    """Tiles one after another in this process (no Dask): for debugging and small clouds."""

    label = "sync"
    n_workers = 1

    def start(self) -> None:
        pass

    def map(self, tasks: list[TileTask], retries: int) -> Iterator[tuple]:
        for t in tasks:
            for attempt in range(retries + 1):
                try:
                    res = run_tile(t)
                except Exception as exc:  # as Dask would: retried, then reported
                    if attempt == retries:
                        yield t, None, exc
                else:
                    yield t, res, None
                    break

    def close(self) -> None:
        pass


class DaskExecutor:
    """Tiles as tasks of a ``dask.distributed`` client: a new ``LocalCluster`` (``n_local``
    single-threaded worker processes), a scheduler ``address``, or a given ``client``."""

    def __init__(self, label: str, n_local: int | None = None, address: str | None = None,
                 client=None, timeout_s: float = CONNECT_TIMEOUT_S):
        self.label, self.n_local, self.address = label, n_local, address
        self.client, self.timeout_s = client, timeout_s
        self._own_client = client is None
        self._cluster = None

    @property
    def remote(self) -> bool:
        return self.address is not None

    def start(self) -> None:
        if self.client is not None:
            return
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise MissingExtra("--dask", "dask") from None
        if self.remote:
            try:
                self.client = Client(self.address, timeout=f"{self.timeout_s}s",
                                     set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise PsirelError(f"--dask {self.address}: no Dask scheduler answered within "
                                  f"{self.timeout_s:g} s ({first_line(exc)})") from None
            try:
                self.client.wait_for_workers(1, timeout=self.timeout_s)
            except (OSError, TimeoutError):
                self.close()
                raise PsirelError(f"--dask {self.address}: the scheduler has no workers (start "
                                  f"some with `dask worker {self.address}`)") from None
            return
        try:
            self._cluster = LocalCluster(n_workers=self.n_local, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=logging.ERROR)
        except Exception as exc:
            raise PsirelError(f"--dask {self.label}: the local Dask workers did not start "
                              f"({first_line(exc)}); {_MAIN_GUARD}") from None
        self.client = Client(self._cluster, set_as_default=False)

    @property
    def n_workers(self) -> int:
        """Tasks the cluster runs at once (worker threads)."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return max(sum(int(w.get("nthreads", 1)) for w in workers), 1)

    def map(self, tasks: list[TileTask], retries: int) -> Iterator[tuple]:
        from distributed import as_completed

        run = uuid.uuid4().hex[:8]
        futures = {self.client.submit(run_tile, t, key=f"psirel-tile-{t.tile}-{run}",
                                      retries=retries, pure=False, priority=len(t.rows)): t
                   for t in tasks}
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                t = futures[fut]
                if fut.status == "error":
                    yield t, None, fut.exception()
                else:
                    yield t, fut.result(), None
                fut.release()
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)

    def close(self) -> None:
        if self._own_client and self.client is not None:
            self.client.close()
            self.client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


_MAIN_GUARD = ("a script that calls psirel with --dask local must do so under "
               "`if __name__ == \"__main__\":` (worker processes re-import the script)")


def make_executor(dask, timeout_s: float = CONNECT_TIMEOUT_S):
    """``"local"``, ``"local:N"``, ``"sync"``, a scheduler address (``tcp://host:8786``) or a
    ``distributed.Client`` → an executor (nothing started yet); a PsirelError otherwise."""
    if hasattr(dask, "submit") and hasattr(dask, "scheduler_info"):
        return DaskExecutor("client", client=dask)
    spec = str(dask).strip()
    if spec == "sync":
        return SyncExecutor()
    m = _LOCAL.match(spec)
    if m:
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            raise PsirelError(_MAIN_GUARD)  # a new worker re-importing an unguarded script
        n = int(m.group(1)) if m.group(1) else None
        if n is not None and n < 1:
            raise PsirelError(f"--dask {spec}: give at least one worker (local:N, N >= 1)")
        if n is None:
            n = os.cpu_count() or 1
        return DaskExecutor(spec, n_local=n)
    if _ADDRESS.match(spec):
        return DaskExecutor(spec, address=spec.rstrip("/"), timeout_s=timeout_s)
    raise PsirelError(f"--dask {spec}: expected local, local:N, sync or a scheduler address "
                      "like tcp://host:8786")
