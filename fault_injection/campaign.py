"""Fault-injection campaigns: plan once, inject in batches, record every result, resume after anything.

A campaign is one SQLite file (:mod:`fault_injection.store`). :func:`run_campaign`
builds the workload (:mod:`fault_injection.workload`), runs the golden run for
its cycle count, draws the fault list (:func:`fault_injection.sampling.plan_faults` over
:func:`fault_injection.sites.model_sites`: the same plan whatever the backend, so
model and RTL campaigns of one seed inject the same faults),
commits the whole plan, then injects the pending faults in batches:

* ``scheduler`` None, ``jobs`` == 1: in this process;
* ``scheduler`` None, ``jobs`` > 1: ``jobs`` worker processes (a
  ``ProcessPoolExecutor`` on the ``forkserver`` start method: no worker inherits
  the open database or the progress thread);
* ``scheduler`` = a Dask scheduler address ("tcp://host:8786"): on that cluster
  (``dask.distributed.Client``); an unreachable scheduler fails within
  ``SCHEDULER_TIMEOUT`` seconds, before the database is created or written.

Each worker (process, or Dask worker thread) builds its injector once, from the
campaign's backend, configuration, workload spec and seed (the workload is
rebuilt deterministically; the worker checks that its golden run has the
campaign's cycle count), and then injects batch after batch. The parent
commits each batch's results as it completes (one transaction per batch), so a
campaign killed at any moment (SIGKILL included) loses at most the batches in
flight; :func:`resume_campaign` injects exactly the faults that have no result.

Injector registry
-----------------
``INJECTORS`` maps a backend name to a factory ``factory(cfg, program) -> injector``;
the injector has ``golden()`` (returning an object with ``.cycles``) and
``inject(faults: Sequence[Fault]) -> list[InjectionResult]`` (one result per
fault, in order). An injector that cannot inject every site may have
``covers(site: Site) -> bool``: the plan is then drawn over the sites it covers
only (the campaign's ``sites`` table holds them; the report names the
structures left out). A factory may carry ``preferred_batch`` (an int: faults per
``inject`` call, e.g. large for an injector that starts a simulator process per
call); otherwise batches are sized for about 16 per worker, at most 128. Register with
:func:`register_injector` (or ``INJECTORS[name] = factory``). Backends "model"
and "rtl" are looked up lazily in ``BUILTIN_BACKENDS`` ("module:attribute",
imported on first use; a module that registers itself at import wins). A backend
may also be given as "package.module:attribute" (importable in every worker
process, e.g. a test double).
"""

from __future__ import annotations

import importlib
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from hwgen.config import AcceleratorConfig

from .faults import FAULT_MODELS, OUTCOMES, Fault, InjectionResult, Site
from .store import CampaignInfo, CampaignStore, check_file
from hwgen.errors import HwgenError

__all__ = ["CampaignError", "CampaignSummary", "INJECTORS", "BUILTIN_BACKENDS", "register_injector",
           "injector_factory", "make_injector", "run_campaign", "resume_campaign", "plan_campaign",
           "DEFAULT_CONFIDENCE", "SCHEDULER_TIMEOUT"]

#: backend name -> factory(cfg, program) -> injector
INJECTORS: dict[str, Callable[[AcceleratorConfig, Any], Any]] = {}
#: lazily imported factories of the built-in backends ("module:attribute")
BUILTIN_BACKENDS: dict[str, str] = {
    "model": "fault_injection.model_injector:ModelInjector",
    "rtl": "fault_injection.rtl_injector:RtlInjector",
}
#: confidence recorded (and used by the report) when a campaign is given a number of injections
DEFAULT_CONFIDENCE = 0.99
#: seconds to wait for a Dask scheduler
SCHEDULER_TIMEOUT = 3.0
_MAX_BATCH = 128


class CampaignError(HwgenError, ValueError):
    """A campaign that cannot be started, continued or finished; the message says why."""


def register_injector(name: str, factory: Callable[[AcceleratorConfig, Any], Any]) -> None:
    INJECTORS[name] = factory


def _import_attr(spec: str) -> Any:
    mod, _, attr = spec.partition(":")
    module = importlib.import_module(mod)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def injector_factory(backend: str) -> Callable[[AcceleratorConfig, Any], Any]:
    """The factory of ``backend`` (CampaignError naming the known backends if there is none)."""
    if backend in INJECTORS:
        return INJECTORS[backend]
    if backend in BUILTIN_BACKENDS:
        spec = BUILTIN_BACKENDS[backend]
        try:
            module = importlib.import_module(spec.partition(":")[0])
        except ImportError as e:
            raise CampaignError(f"backend '{backend}' is not available ({e})") from None
        if backend in INJECTORS:  # the module registered itself
            return INJECTORS[backend]
        try:
            return _import_attr(spec) if getattr(module, spec.partition(":")[2], None) is not None \
                else getattr(module, "make_injector")
        except AttributeError:
            raise CampaignError(f"backend '{backend}': {spec} is not defined") from None
    if ":" in backend:
        try:
            return _import_attr(backend)
        except (ImportError, AttributeError) as e:
            raise CampaignError(f"backend '{backend}' cannot be imported ({e})") from None
    known = sorted(set(INJECTORS) | set(BUILTIN_BACKENDS))
    raise CampaignError(f"unknown backend '{backend}'; known: {', '.join(known)} (or module:factory)")


def make_injector(backend: str, cfg: AcceleratorConfig, program) -> Any:
    """An injector for ``program`` on ``cfg`` from the ``backend`` registry entry."""
    return injector_factory(backend)(cfg, program)


# ------------------------------------------------------------------ workers
_CTX = tuple  # (backend, config JSON, workload spec, seed, golden cycles)
_LOCAL = threading.local()


def _build(ctx: _CTX) -> Any:
    from .workload import build_workload

    backend, cfg_json, workload, seed, golden_cycles = ctx
    cfg = AcceleratorConfig.from_json(cfg_json, source="campaign")
    injector = make_injector(backend, cfg, build_workload(workload, cfg, seed))
    got = int(injector.golden().cycles)
    if golden_cycles is not None and got != golden_cycles:
        raise CampaignError(f"the rebuilt workload '{workload}' runs {got} cycles, the campaign's golden run "
                            f"{golden_cycles}: the plan does not apply (was hwgen changed since the campaign began?)")
    return injector


def _injector(ctx: _CTX) -> Any:
    cached = getattr(_LOCAL, "cached", None)
    if cached is None or cached[0] != ctx:
        _LOCAL.cached = None
        _LOCAL.cached = (ctx, _build(ctx))
    return _LOCAL.cached[1]


def run_batch(ctx: _CTX, batch: Sequence[tuple[int, Fault]]) -> list[tuple[int, InjectionResult]]:
    """Inject one batch with this process's (thread's) injector; (index, result) pairs."""
    results = list(_injector(ctx).inject([f for _, f in batch]))
    if len(results) != len(batch):
        raise CampaignError(f"injector returned {len(results)} results for {len(batch)} faults")
    for r in results:
        if not isinstance(r, InjectionResult) or r.outcome not in OUTCOMES:
            raise CampaignError(f"injector returned {r!r}, not an InjectionResult with an outcome in {OUTCOMES}")
    return [(i, r) for (i, _), r in zip(batch, results)]


def _watch_parent(pid: int) -> None:
    """Pool worker initializer: exit when the campaign process ``pid`` is gone (e.g. SIGKILLed) instead of
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

    threading.Thread(target=watch, daemon=True, name="campaign-watch").start()


# ------------------------------------------------------------------ planning
def plan_campaign(cfg: AcceleratorConfig, workload: str, seed: int, backend: str, n: int | None = None,
                  margin: float | None = None, confidence: float | None = None,
                  models: Sequence[str] = ("seu",), structures: Sequence[str] | None = None
                  ) -> tuple[CampaignInfo, list[Site], list[Fault], Any]:
    """(campaign parameters, sites, the fault plan, the parent's injector): builds the workload, runs the golden
    run and draws the plan. Deterministic: the same arguments give the same plan."""
    from .sampling import plan_faults
    from .sites import model_sites
    from .workload import build_workload

    program = build_workload(workload, cfg, seed)
    injector = make_injector(backend, cfg, program)
    cycles = int(injector.golden().cycles)
    if cycles < 1:
        raise CampaignError(f"golden run of '{workload}' has {cycles} cycles")
    sites = model_sites(cfg)
    if structures:
        from .faults import STRUCTURES

        unknown = sorted(set(structures) - set(STRUCTURES))
        if unknown:
            raise CampaignError(f"unknown structure(s) {', '.join(unknown)}; known: {', '.join(STRUCTURES)}")
        sites = [s for s in sites if s.structure in set(structures)]
    covers = getattr(injector, "covers", None)
    if callable(covers):
        sites = [s for s in sites if covers(s)]
        if not sites:
            raise CampaignError(f"backend '{backend}' covers none of the fault sites of config '{cfg.name}'")
    if n is not None:
        faults = plan_faults(sites, cycles, n, seed, models=tuple(models))
    else:
        faults = plan_faults(sites, cycles, None, seed, models=tuple(models), margin=margin, confidence=confidence)
    info = CampaignInfo(cfg.to_dict(), workload, int(seed), backend, tuple(models), len(faults),
                        float(confidence if confidence is not None else DEFAULT_CONFIDENCE), cycles, margin)
    return info, sites, faults, injector


# ------------------------------------------------------------------ running
@dataclass
class CampaignSummary:
    path: Path
    planned: int
    done: int
    injected_now: int
    elapsed: float
    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.injected_now / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def complete(self) -> bool:
        return self.done == self.planned


def _check_args(n, margin, confidence, jobs, models, seed) -> tuple[str, ...]:
    if (n is None) == (margin is None):
        raise CampaignError("give either a number of injections or a margin (with a confidence)")
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise CampaignError(f"number of injections must be a positive integer, got {n!r}")
    if margin is not None and not 0 < margin < 1:
        raise CampaignError(f"margin must be in (0, 1) (e.g. 0.01 for +-1%), got {margin!r}")
    if confidence is not None and not 0 < confidence < 1:
        raise CampaignError(f"confidence must be in (0, 1) (e.g. 0.99), got {confidence!r}")
    if not isinstance(jobs, int) or jobs < 1:
        raise CampaignError(f"jobs must be a positive integer, got {jobs!r}")
    if not isinstance(seed, int) or seed < 0:
        raise CampaignError(f"seed must be a non-negative integer, got {seed!r}")
    models = tuple(models)
    bad = [m for m in models if m not in FAULT_MODELS]
    if bad or not models:
        raise CampaignError(f"unknown fault model(s) {', '.join(bad) or '(none given)'}; "
                            f"known: {', '.join(FAULT_MODELS)}")
    return models


def _connect(scheduler: str):
    try:
        from distributed import Client
    except ImportError as e:  # pragma: no cover - distributed is a dependency
        raise CampaignError(f"dask.distributed is not available ({e})") from None
    try:
        return Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise CampaignError(f"cannot reach the Dask scheduler at {scheduler} within {SCHEDULER_TIMEOUT:g} s "
                            f"({type(e).__name__}: {e})") from None


def run_campaign(db_path: str | os.PathLike[str], cfg: AcceleratorConfig, workload_spec: str, n: int | None = None,
                 *, margin: float | None = None, confidence: float | None = None, seed: int = 0,
                 backend: str = "model", jobs: int = 1, scheduler: str | None = None, progress: bool = True,
                 models: Sequence[str] = ("seu",), batch_size: int | None = None,
                 structures: Sequence[str] | None = None) -> CampaignSummary:
    """Plan (``n`` injections, or the Leveugle size for ``margin`` at ``confidence``) and run a campaign into
    ``db_path``. If ``db_path`` already holds the same campaign (same parameters), it is resumed; a different
    campaign there is an error (the file is left alone)."""
    models = _check_args(n, margin, confidence, jobs, models, seed)
    if margin is not None and confidence is None:
        raise CampaignError("a margin needs a confidence (e.g. 0.99)")
    if not isinstance(cfg, AcceleratorConfig):
        raise CampaignError(f"cfg must be an AcceleratorConfig, not {type(cfg).__name__}")
    injector_factory(backend)  # unknown backend: fail before anything else
    p = Path(db_path)
    if p.exists():
        check_file(p)  # read-only look at the header: a foreign file is refused untouched
        with CampaignStore.open(p, readonly=True) as st:
            _same_campaign(st.info, p, cfg, workload_spec, seed, backend, models, n, margin, confidence)
        return resume_campaign(p, jobs=jobs, scheduler=scheduler, progress=progress, batch_size=batch_size)
    client = _connect(scheduler) if scheduler else None
    try:
        info, sites, faults, injector = plan_campaign(cfg, workload_spec, seed, backend, n, margin, confidence, models,
                                                      structures)
        store = CampaignStore.create(p, info, sites, faults)
        with store:
            return _execute(store, jobs, client, progress, batch_size, injector)
    finally:
        if client is not None:
            client.close()


def _same_campaign(info: CampaignInfo, p: Path, cfg, workload, seed, backend, models, n, margin, confidence) -> None:
    diffs = []
    if info.config != cfg.to_dict():
        diffs.append("configuration")
    for name, mine, theirs in (("workload", workload, info.workload), ("seed", seed, info.seed),
                               ("backend", backend, info.backend), ("fault models", tuple(models), info.models),
                               ("margin", margin, info.margin)):
        if mine != theirs:
            diffs.append(f"{name} ({theirs!r} there, {mine!r} asked)")
    if n is not None and n != info.planned:
        diffs.append(f"injections ({info.planned} there, {n} asked)")
    if confidence is not None and abs(confidence - info.confidence) > 1e-12:
        diffs.append(f"confidence ({info.confidence} there, {confidence} asked)")
    if diffs:
        raise CampaignError(f"{p}: holds a different campaign (differs in {', '.join(diffs)}); "
                            f"choose another --db, or 'hwgen fi resume --db {p}' to continue that one")


def resume_campaign(db_path: str | os.PathLike[str], jobs: int = 1, scheduler: str | None = None,
                    progress: bool = True, batch_size: int | None = None) -> CampaignSummary:
    """Inject the planned faults of ``db_path`` that have no result yet."""
    if not isinstance(jobs, int) or jobs < 1:
        raise CampaignError(f"jobs must be a positive integer, got {jobs!r}")
    p = Path(db_path)
    check_file(p)
    client = _connect(scheduler) if scheduler else None
    try:
        with CampaignStore.open(p) as store:
            return _execute(store, jobs, client, progress, batch_size, None)
    finally:
        if client is not None:
            client.close()


def _batches(pending: list, size: int) -> list[list]:
    return [pending[i:i + size] for i in range(0, len(pending), size)]


def _progress(enabled: bool, total: int, done: int, label: str):
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


def _execute(store: CampaignStore, jobs: int, client, progress: bool, batch_size: int | None,
             injector) -> CampaignSummary:
    info = store.info
    store.lock()
    pending = store.pending()
    ctx = (info.backend, AcceleratorConfig.from_dict(info.config, source=str(store.path)).to_json(), info.workload,
           info.seed, info.golden_cycles)
    workers = max(1, sum(client.nthreads().values()) if client is not None else jobs)
    if batch_size is None:
        batch_size = getattr(injector_factory(info.backend), "preferred_batch", None)
    if batch_size is None:
        batch_size = max(1, min(_MAX_BATCH, math.ceil(len(pending) / (workers * 16)) if pending else 1))
    if not isinstance(batch_size, int) or batch_size < 1:
        raise CampaignError(f"batch size must be a positive integer, got {batch_size!r}")
    batches = _batches(pending, batch_size)
    done0 = info.planned - len(pending)
    t0 = time.monotonic()
    injected = 0
    bar, task = _progress(progress, info.planned, done0, f"{store.path.name} ({info.backend})")

    def commit(results: list[tuple[int, InjectionResult]]) -> None:
        nonlocal injected
        store.add_results(results)
        injected += len(results)
        el = time.monotonic() - t0
        bar.update(task, advance=len(results), rate=f"{injected / el:,.0f} inj/s" if el > 0 else "")

    def failed(batch, e: BaseException) -> CampaignError:
        return CampaignError(f"{store.path}: injection of faults {batch[0][0]}..{batch[-1][0]} failed "
                             f"({type(e).__name__}: {e}); {done0 + injected} of {info.planned} results are recorded, "
                             f"'hwgen fi resume --db {store.path}' continues")

    with bar:
        if not batches:
            pass
        elif client is not None:
            _run_dask(client, ctx, batches, workers, commit, failed)
        elif jobs == 1:
            if injector is not None:
                _LOCAL.cached = (ctx, injector)
            for b in batches:
                try:
                    res = run_batch(ctx, b)
                except CampaignError:
                    raise
                except Exception as e:
                    raise failed(b, e) from None
                commit(res)
        else:
            _run_pool(jobs, ctx, batches, commit, failed)
    return CampaignSummary(store.path, info.planned, store.n_results(), injected, time.monotonic() - t0,
                           store.counts())


def _run_pool(jobs: int, ctx, batches, commit, failed) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=_watch_parent, initargs=(os.getpid(),))
    todo = list(reversed(batches))
    running: dict = {}
    ok = False
    try:
        while todo or running:
            while todo and len(running) < 2 * jobs:
                b = todo.pop()
                running[pool.submit(run_batch, ctx, b)] = b
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                _collect(fut, running.pop(fut), commit, failed)
        ok = True
    finally:
        pool.shutdown(wait=ok, cancel_futures=True)


def _collect(fut, batch, commit, failed) -> None:
    """Commit a finished batch's results; a worker's failure becomes the campaign's error for that batch."""
    try:
        res = fut.result()
    except CampaignError:
        raise
    except Exception as e:
        raise failed(batch, e) from None
    commit(res)


def _run_dask(client, ctx, batches, workers: int, commit, failed) -> None:
    from distributed import as_completed

    todo = list(reversed(batches))
    owner: dict = {}
    for _ in range(min(len(todo), 2 * workers)):
        b = todo.pop()
        f = client.submit(run_batch, ctx, b, pure=False)
        owner[f.key] = (f, b)
    ac = as_completed([f for f, _ in owner.values()], loop=client.loop)
    try:
        for fut in ac:
            _, b = owner.pop(fut.key)
            _collect(fut, b, commit, failed)
            if todo:
                nb = todo.pop()
                nf = client.submit(run_batch, ctx, nb, pure=False)
                owner[nf.key] = (nf, nb)
                ac.add(nf)
    finally:
        for f, _ in owner.values():
            f.cancel()
