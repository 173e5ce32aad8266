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
  (``dask.distributed.Client``). The address's form is checked first; then the
  scheduler is asked who it is under one ``SCHEDULER_TIMEOUT`` (a refused port,
  an unknown host, a peer that never answers or is not a Dask scheduler), then
  connected; any failure is a CampaignError naming the address, before the
  database is created or written.

(The machinery is :mod:`hwgen.workers`, shared with the design-space sweeps.)

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
call); otherwise batches are sized for about 16 per worker, at most 128. A factory with ``accepts_jobs``
true takes a keyword ``jobs`` (faulty runs at once in one injector): local worker processes pass their
share of the CPUs, so that ``jobs`` workers do not oversubscribe the machine.

The registry is closed: a backend name from a campaign file, a command line or
any other text only selects an entry, it never names code to import (a campaign
database is a file anyone may have edited). The built-in "model" and "rtl" are
loaded on first use (``BUILTIN_BACKENDS``: name -> loader); any other backend
exists only once Python code in the process calls :func:`register_injector`.
Worker processes and Dask workers receive the factory itself with each batch
(pickled by reference, like any function sent to a process pool), so a
registered factory must be a module-level function or class importable there.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from hwgen.config import AcceleratorConfig
from hwgen import workers
from hwgen.errors import HwgenError
from hwgen.workers import MAX_JOBS, progress_bar, run_tasks

from .faults import FAULT_MODELS, OUTCOMES, CampaignError, Fault, InjectionResult, Site
from .store import CampaignInfo, CampaignStore, check_file, is_int, path_exists, quoted

__all__ = ["CampaignError", "CampaignSummary", "INJECTORS", "BUILTIN_BACKENDS", "register_injector",
           "known_backends", "injector_factory", "make_injector", "run_campaign", "resume_campaign",
           "plan_campaign", "check_scheduler_address", "DEFAULT_CONFIDENCE", "SCHEDULER_TIMEOUT", "MAX_JOBS"]

Factory = Callable[[AcceleratorConfig, Any], Any]


def _model_factory() -> Factory:
    from .model_injector import ModelInjector

    return ModelInjector


def _rtl_factory() -> Factory:
    from .rtl_injector import RtlInjector

    return RtlInjector


#: backend name -> factory(cfg, program) -> injector (the built-ins once loaded, and every registered one)
INJECTORS: dict[str, Factory] = {}
#: the built-in backends: name -> loader of the factory (their modules import the simulators: loaded on first use)
BUILTIN_BACKENDS: dict[str, Callable[[], Factory]] = {"model": _model_factory, "rtl": _rtl_factory}
#: confidence recorded (and used by the report) when a campaign is given a number of injections
DEFAULT_CONFIDENCE = 0.99
#: seconds to wait for a Dask scheduler (to connect, and again for it to answer; read when connecting)
SCHEDULER_TIMEOUT = workers.SCHEDULER_TIMEOUT
_MAX_BATCH = 128
_BACKEND_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


def register_injector(name: str, factory: Factory) -> None:
    """Make ``factory`` the injector of backend ``name`` in this process (replacing a previous one).

    The only way a backend other than the built-ins comes to exist: campaign files and command lines
    name backends, they never name code to import."""
    if not isinstance(name, str) or not _BACKEND_NAME.fullmatch(name):
        raise CampaignError(f"backend name {quoted(name)}: use 1 to 64 letters, digits, '_', '.', '+' or '-'")
    if not callable(factory):
        raise CampaignError(f"backend '{name}': the factory {quoted(factory)} is not callable")
    INJECTORS[name] = factory


def known_backends() -> list[str]:
    """The backend names this process knows: the built-ins and every registered one."""
    return sorted(set(INJECTORS) | set(BUILTIN_BACKENDS))


def injector_factory(backend: str, source: str | None = None) -> Factory:
    """The factory of ``backend`` from the registry (CampaignError naming the known backends if there is
    none). ``source`` names where the name was read (a campaign file's field) for the message."""
    if isinstance(backend, str) and backend in INJECTORS:
        return INJECTORS[backend]
    loader = BUILTIN_BACKENDS.get(backend) if isinstance(backend, str) else None
    if loader is None:
        where = f"{source} = {quoted(backend)} is not a known backend" if source else \
            f"unknown backend {quoted(backend)}"
        raise CampaignError(f"{where}; known: {', '.join(known_backends())} (other backends are registered "
                            f"in-process with fault_injection.campaign.register_injector)")
    try:
        factory = loader()
    except ImportError as e:
        raise CampaignError(f"backend '{backend}' is not available ({e})") from None
    return INJECTORS.setdefault(backend, factory)


def make_injector(backend: str, cfg: AcceleratorConfig, program) -> Any:
    """An injector for ``program`` on ``cfg`` from the ``backend`` registry entry."""
    return injector_factory(backend)(cfg, program)


# ------------------------------------------------------------------ workers
_CTX = tuple  # (backend name, factory, config JSON, workload spec, seed, golden cycles, jobs per worker or None)
_LOCAL = threading.local()


def _build(ctx: _CTX) -> Any:
    """The worker's injector: the factory the parent looked up (never a name resolved here), on the rebuilt
    workload, checked against the campaign's golden run."""
    from .workload import build_workload

    _, factory, cfg_json, workload, seed, golden_cycles, worker_jobs = ctx
    cfg = AcceleratorConfig.from_json(cfg_json, source="campaign")
    kwargs = {"jobs": worker_jobs} if worker_jobs is not None and getattr(factory, "accepts_jobs", False) else {}
    injector = factory(cfg, build_workload(workload, cfg, seed), **kwargs)
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
        wanted = _structures(structures)
        sites = [s for s in sites if s.structure in wanted]
    covers = getattr(injector, "covers", None)
    if callable(covers):
        covered = sorted({s.structure for s in model_sites(cfg) if covers(s)})
        sites = [s for s in sites if covers(s)]
        if not sites:
            asked = f" in structures {', '.join(sorted(_structures(structures)))}" if structures else ""
            raise CampaignError(f"backend '{backend}' covers none of the fault sites{asked} of config '{cfg.name}' "
                                f"({cfg.controller} controller; it covers: {', '.join(covered) or 'nothing'})")
    if n is not None:
        faults = plan_faults(sites, cycles, n, seed, models=tuple(models))
    else:
        faults = plan_faults(sites, cycles, None, seed, models=tuple(models), margin=margin, confidence=confidence)
    info = CampaignInfo(cfg.to_dict(), workload, int(seed), backend, tuple(models), len(faults),
                        float(confidence if confidence is not None else DEFAULT_CONFIDENCE), cycles, margin)
    return info, sites, faults, injector


def _structures(structures: Sequence[str]) -> set[str]:
    """The structure names asked for, all known (CampaignError listing the unknown and the known ones)."""
    from .faults import STRUCTURES

    try:
        wanted = list(structures)
    except TypeError:
        raise CampaignError(f"structures must be a sequence of names, got {quoted(structures)}") from None
    unknown = sorted({w if isinstance(w, str) and len(w) <= 60 else quoted(w) for w in wanted
                      if not (isinstance(w, str) and w in STRUCTURES)})
    if unknown:
        raise CampaignError(f"unknown structure(s) {', '.join(unknown)}; known: {', '.join(STRUCTURES)}")
    return set(wanted)


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


def _check_args(n, margin, confidence, jobs, models, seed, batch_size) -> tuple[str, ...]:
    """The run parameters checked before anything is built or written; the fault models as a tuple."""
    from .sampling import check_fraction, check_injections

    if (n is None) == (margin is None):
        raise CampaignError("give either a number of injections or a margin (with a confidence)")
    if n is not None:
        check_injections(n)
    if margin is not None:
        check_fraction("margin", margin, "0.01 for +-1%")
        if confidence is None:
            raise CampaignError("a margin needs a confidence (e.g. 0.99)")
    if confidence is not None:
        check_fraction("confidence", confidence, "0.99")
    _check_jobs(jobs)
    _check_batch_size(batch_size)
    if not is_int(seed, 0, (1 << 63) - 1):
        raise CampaignError(f"seed must be an integer from 0 to 2**63-1, got {quoted(seed)}")
    try:
        models = tuple(models)
        bad = [quoted(m) for m in models if not (isinstance(m, str) and m in FAULT_MODELS)]
    except TypeError:
        raise CampaignError(f"fault models must be a sequence of names, got {quoted(models)}") from None
    if bad or not models:
        raise CampaignError(f"unknown fault model(s) {', '.join(bad) or '(none given)'}; "
                            f"known: {', '.join(FAULT_MODELS)}")
    return models


def _check_jobs(jobs: Any) -> None:
    workers.check_jobs(jobs, CampaignError)


def _check_batch_size(batch_size: Any) -> None:
    if batch_size is not None and not is_int(batch_size, 1, 1 << 30):
        raise CampaignError(f"batch size must be a positive integer, got {quoted(batch_size)}")


def check_scheduler_address(address: Any) -> str:
    """``address`` if it has the form of a Dask scheduler address (``tcp://host:port``, or ``tls://``; or the
    ``inproc://`` address of a scheduler in this process), CampaignError otherwise: checked before anything is
    resolved or connected."""
    return workers.check_scheduler_address(address, CampaignError)


def _connect(scheduler: str):
    """A Dask client of ``scheduler``: the address checked, the scheduler asked (bounded), then connected."""
    return workers.connect_scheduler(scheduler, SCHEDULER_TIMEOUT, CampaignError)


def run_campaign(db_path: str | os.PathLike[str], cfg: AcceleratorConfig, workload_spec: str, n: int | None = None,
                 *, margin: float | None = None, confidence: float | None = None, seed: int = 0,
                 backend: str = "model", jobs: int = 1, scheduler: str | None = None, progress: bool = True,
                 models: Sequence[str] = ("seu",), batch_size: int | None = None,
                 structures: Sequence[str] | None = None) -> CampaignSummary:
    """Plan (``n`` injections, or the Leveugle size for ``margin`` at ``confidence``) and run a campaign into
    ``db_path``. If ``db_path`` already holds the same campaign (same parameters), it is resumed; a different
    campaign there is an error (the file is left alone). Every argument is checked before anything is built,
    connected or written."""
    models = _check_args(n, margin, confidence, jobs, models, seed, batch_size)
    if not isinstance(cfg, AcceleratorConfig):
        raise CampaignError(f"cfg must be an AcceleratorConfig, not {type(cfg).__name__}")
    injector_factory(backend)  # unknown backend: fail before anything else
    if scheduler is not None:
        check_scheduler_address(scheduler)
    p = Path(db_path)
    if path_exists(p):
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
            return _execute(store, injector_factory(backend), jobs, client, progress, batch_size, injector)
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
    """Inject the planned faults of ``db_path`` that have no result yet.

    The file's campaign fields are checked (by the store) and the backend and workload they name are checked
    here, before a scheduler is contacted or anything is written: a damaged or edited file gives a StoreError
    or CampaignError naming it and the field, and stays as it was."""
    _check_jobs(jobs)
    _check_batch_size(batch_size)
    if scheduler is not None:
        check_scheduler_address(scheduler)
    p = Path(db_path)
    check_file(p)
    with CampaignStore.open(p) as store:
        factory = _stored_backend(store)
        client = _connect(scheduler) if scheduler else None
        try:
            return _execute(store, factory, jobs, client, progress, batch_size, None)
        finally:
            if client is not None:
                client.close()


def _stored_backend(store: CampaignStore) -> Factory:
    """The factory of the backend a campaign file names, after checking its workload spec parses and fits the
    limits (what every worker is about to build): CampaignError naming the file and the field otherwise."""
    from .workload import check_workload

    info = store.info
    factory = injector_factory(info.backend, source=f"{store.path}: campaign field 'backend'")
    try:
        check_workload(info.workload, AcceleratorConfig.from_dict(info.config, source=str(store.path)))
    except HwgenError as e:
        raise CampaignError(f"{store.path}: campaign field 'workload': {e}") from None
    return factory


def _batches(pending: list, size: int) -> list[list]:
    return [pending[i:i + size] for i in range(0, len(pending), size)]


def _execute(store: CampaignStore, factory: Factory, jobs: int, client, progress: bool, batch_size: int | None,
             injector) -> CampaignSummary:
    info = store.info
    store.lock()
    store.counts()  # the recorded results checked (aggregated: cheap) before one more is written
    pending = store.pending()
    n_workers = max(1, sum(client.nthreads().values()) if client is not None else jobs)
    # local worker processes share this machine's cores: an injector that runs several faulty runs at
    # once gets its share, so that jobs workers keep about one runnable process per core
    worker_jobs = max(1, (os.cpu_count() or 1) // jobs) if client is None and jobs > 1 else None
    ctx = (info.backend, factory, AcceleratorConfig.from_dict(info.config, source=str(store.path)).to_json(),
           info.workload, info.seed, info.golden_cycles, worker_jobs)
    if batch_size is None:
        batch_size = getattr(factory, "preferred_batch", None)
        _check_batch_size(batch_size)
    if batch_size is None:
        batch_size = max(1, min(_MAX_BATCH, math.ceil(len(pending) / (n_workers * 16)) if pending else 1))
    batches = _batches(pending, batch_size)
    done0 = info.planned - len(pending)
    t0 = time.monotonic()
    injected = 0
    bar, task = progress_bar(progress, info.planned, done0, f"{store.path.name} ({info.backend})")

    def commit(results: list[tuple[int, InjectionResult]]) -> None:
        nonlocal injected
        store.add_results(results)
        injected += len(results)
        el = time.monotonic() - t0
        bar.update(task, advance=len(results), rate=f"{injected / el:,.0f} inj/s" if el > 0 else "")

    def failed(batch, e: BaseException) -> CampaignError:
        why = str(e) if isinstance(e, CampaignError) else " ".join(f"{type(e).__name__}: {e}".split())
        return CampaignError(f"{store.path}: injection of faults {batch[0][0]}..{batch[-1][0]} failed "
                             f"({why}); {done0 + injected} of {info.planned} results are recorded, "
                             f"'hwgen fi resume --db {store.path}' continues")

    with bar:
        if client is None and jobs == 1 and injector is not None:
            _LOCAL.cached = (ctx, injector)
        elif client is None and jobs > 1 and batches:
            _check_sendable(ctx)
        run_tasks(run_batch, ctx, batches, commit, failed, jobs=jobs, client=client)
    return CampaignSummary(store.path, info.planned, store.n_results(), injected, time.monotonic() - t0,
                           store.counts())


def _check_sendable(ctx: _CTX) -> None:
    """Worker processes receive the factory pickled (by reference to its module): say so before any starts."""
    import pickle

    try:
        pickle.dumps(ctx[1])
    except Exception as e:
        raise CampaignError(f"backend '{ctx[0]}': its factory cannot be sent to worker processes "
                            f"({type(e).__name__}: {e}); register a module-level function or class, "
                            f"or run with jobs=1") from None
