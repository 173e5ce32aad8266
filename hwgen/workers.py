"""Running independent tasks in this process, in local worker processes or on a Dask cluster.

Long runs whose results a parent commits one by one as they finish (fault-injection campaigns,
:mod:`fault_injection.campaign`; design-space sweeps, :mod:`mappings.dse`) share how the work is spread:

* ``jobs`` == 1 and no scheduler: in this process, in order;
* ``jobs`` > 1: ``jobs`` worker processes (a ``ProcessPoolExecutor`` on the ``forkserver`` start method: no
  worker inherits the parent's open database or progress thread; each worker exits when the parent is gone,
  :func:`watch_parent`, instead of lingering after a SIGKILL);
* a Dask scheduler address (``tcp://host:8786``): on that cluster (``dask.distributed.Client``). The
  address's form is checked first (:func:`check_scheduler_address`), then the scheduler is asked who it is
  under one timeout (a refused port, an unknown host, a peer that never answers or is not a Dask scheduler),
  then connected (:func:`connect_scheduler`); any failure is the caller's error naming the address.

:func:`run_tasks` keeps at most two tasks per worker in flight, so a parent killed at any moment loses only
those; the caller's ``commit`` runs in the parent for each result as it arrives. The error class is the
caller's (``error=``), so each command keeps its own exception and wording.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any, Callable, Sequence

from .errors import HwgenError
from .sqlite_files import is_int, quoted

__all__ = ["MAX_JOBS", "SCHEDULER_TIMEOUT", "check_jobs", "check_scheduler_address", "connect_scheduler",
           "watch_parent", "progress_bar", "run_tasks"]

#: most local worker processes one run may start (a mistyped --jobs must not fork thousands)
MAX_JOBS = max(64, 4 * (os.cpu_count() or 1))
#: default seconds to wait for a Dask scheduler (to connect, and again for it to answer)
SCHEDULER_TIMEOUT = 3.0
#: scheme://host:port, host a name, an IPv4 address or a bracketed IPv6 address
_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9.-]{0,252}):([0-9]{1,5})")
#: an in-process scheduler's address (a LocalCluster without processes): inproc://host/pid/n
_INPROC = re.compile(r"inproc://[A-Za-z0-9.:\[\]-]{1,253}/[0-9]{1,10}/[0-9]{1,10}")


def check_jobs(jobs: Any, error: type[HwgenError]) -> None:
    """``error`` unless ``jobs`` is a number of local worker processes from 1 to :data:`MAX_JOBS`."""
    if not is_int(jobs, 1, MAX_JOBS):
        raise error(f"jobs must be an integer from 1 to {MAX_JOBS} (local worker processes), got {quoted(jobs)}")


def check_scheduler_address(address: Any, error: type[HwgenError]) -> str:
    """``address`` if it has the form of a Dask scheduler address (``tcp://host:port``, or ``tls://``; or the
    ``inproc://`` address of a scheduler in this process), ``error`` otherwise: checked before anything is
    resolved or connected."""
    if isinstance(address, str) and _INPROC.fullmatch(address):
        return address
    m = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise error(f"Dask scheduler address {quoted(address)} is not of the form tcp://host:port "
                    f"(e.g. tcp://127.0.0.1:8786; port 1 to 65535)")
    return address


def _unreachable(address: str, reason: str, timeout: float, error: type[HwgenError]) -> HwgenError:
    return error(f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({reason}); "
                 f"expected the address of a running scheduler, tcp://host:port")


def _probe(address: str, timeout: float, error: type[HwgenError]) -> None:
    """Ask the peer at ``address`` who it is, over Dask's protocol, within ``timeout`` seconds in all.

    ``distributed.Client`` alone waits without end for a peer that accepts the connection and never answers
    (its handshake read has no timeout), so the question runs under one ``asyncio.wait_for`` in a thread of
    its own (the caller may itself be inside an event loop); ``error`` if no scheduler answers."""
    import asyncio

    from distributed.comm import connect

    state: dict[str, Any] = {}

    async def ask() -> Any:
        comm = await connect(address, timeout=round(0.8 * timeout, 2))  # connects and shakes hands
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    def run() -> None:
        try:
            state["identity"] = asyncio.run(asyncio.wait_for(ask(), timeout))
        except asyncio.TimeoutError:
            state["error"] = "connected, but no Dask handshake: not a Dask scheduler, or one too busy to answer"
        except Exception as e:  # OSError (refused, no route, unknown host), CommClosedError, ValueError
            state["error"] = _reason(e)

    thread = threading.Thread(target=run, daemon=True, name="dask-probe")
    thread.start()
    thread.join(timeout + 2.0)
    if thread.is_alive() or "identity" not in state:
        raise _unreachable(address, state.get("error", "no answer"), timeout, error)
    identity = state["identity"]
    if not (isinstance(identity, dict) and identity.get("type") == "Scheduler"):
        kind = identity.get("type") if isinstance(identity, dict) else None
        raise _unreachable(address, f"the peer answers, but is not a Dask scheduler ({quoted(kind)})", timeout, error)


def _reason(e: BaseException) -> str:
    """One line on why a connection failed: the exception, and the first cause in its chain that says more."""
    text = " ".join(f"{type(e).__name__}: {e}".split())
    seen, inner = {id(e)}, e.__cause__ or e.__context__
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if str(inner).strip():
            return f"{text} ({' '.join(str(inner).split())})"
        inner = inner.__cause__ or inner.__context__
    return text


def connect_scheduler(address: str, timeout: float, error: type[HwgenError]):
    """A Dask client of the scheduler at ``address``: the address checked, the scheduler asked (within
    ``timeout`` seconds), then connected; ``error`` naming the address on any failure."""
    try:
        from distributed import Client
    except ImportError as e:  # pragma: no cover - distributed is a dependency
        raise error(f"dask.distributed is not available ({e})") from None
    check_scheduler_address(address, error)
    _probe(address, timeout, error)
    try:
        return Client(address, timeout=f"{timeout}s", set_as_default=False)
    except Exception as e:
        raise _unreachable(address, _reason(e), timeout, error) from None


def watch_parent(pid: int) -> None:
    """Pool worker initializer: exit when the parent process ``pid`` is gone (e.g. SIGKILLed) instead of
    lingering (a forkserver worker's parent is the fork server, which waits for its workers)."""

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # pragma: no cover - the pid was reused by another user's process
                os._exit(1)
            try:  # killed but not yet reaped (a zombie) counts as gone
                with open(f"/proc/{pid}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                        os._exit(1)
            except (OSError, IndexError):
                pass

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def progress_bar(enabled: bool, total: int, done: int, label: str):
    """(rich Progress, task id): a bar with done/total, a ``rate`` field the caller updates, elapsed time and
    ETA, on standard error and only on a terminal (a log file gets no control sequences)."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TextColumn("elapsed"), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn(), console=console,
                   disable=not (enabled and console.is_terminal), transient=False)
    task = bar.add_task(label, total=total, completed=done, rate="")
    return bar, task


Commit = Callable[[Any], None]
Failed = Callable[[Any, BaseException], BaseException]


def run_tasks(fn: Callable[[Any, Any], Any], ctx: Any, items: Sequence[Any], commit: Commit, failed: Failed, *,
              jobs: int = 1, client=None) -> None:
    """``commit(fn(ctx, item))`` for every item, in the parent, as each finishes: in this process
    (``jobs`` == 1, no ``client``), in ``jobs`` forkserver processes, or on the Dask ``client``'s cluster.
    ``fn`` and ``ctx`` go to the workers pickled (``fn`` by reference: a module-level function). A task that
    raises ends the run with ``failed(item, exception)`` (raised); the tasks not yet finished are cancelled."""
    if not items:
        return
    if client is not None:
        workers = max(1, sum(client.nthreads().values()))
        _run_dask(client, fn, ctx, items, workers, commit, failed)
    elif jobs == 1:
        for item in items:
            try:
                res = fn(ctx, item)
            except Exception as e:
                raise failed(item, e) from None
            commit(res)
    else:
        _run_pool(jobs, fn, ctx, items, commit, failed)


def _run_pool(jobs: int, fn, ctx, items, commit: Commit, failed: Failed) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=watch_parent, initargs=(os.getpid(),))
    todo = list(reversed(items))
    running: dict = {}
    ok = False
    try:
        while todo or running:
            while todo and len(running) < 2 * jobs:
                item = todo.pop()
                running[pool.submit(fn, ctx, item)] = item
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                _collect(fut, running.pop(fut), commit, failed)
        ok = True
    finally:
        pool.shutdown(wait=ok, cancel_futures=True)


def _collect(fut, item, commit: Commit, failed: Failed) -> None:
    """Commit a finished task's result; a worker's failure becomes the run's error for that item."""
    try:
        res = fut.result()
    except Exception as e:
        raise failed(item, e) from None
    commit(res)


def _run_dask(client, fn, ctx, items, workers: int, commit: Commit, failed: Failed) -> None:
    from distributed import as_completed

    todo = list(reversed(items))
    owner: dict = {}
    for _ in range(min(len(todo), 2 * workers)):
        item = todo.pop()
        f = client.submit(fn, ctx, item, pure=False)
        owner[f.key] = (f, item)
    ac = as_completed([f for f, _ in owner.values()], loop=client.loop)
    try:
        for fut in ac:
            _, item = owner.pop(fut.key)
            _collect(fut, item, commit, failed)
            if todo:
                nxt = todo.pop()
                nf = client.submit(fn, ctx, nxt, pure=False)
                owner[nf.key] = (nf, nxt)
                ac.add(nf)
    finally:
        for f, _ in owner.values():
            f.cancel()
