"""Plan search: the tile sizes, loop order and dataflow of a layer that minimise its exact cycle count.

:func:`mappings.lowering.plan_tiles` chooses a :class:`~sim.tiling.Plan` with a
closed-form *estimate*; this module searches the plans the lowering accepts and
costs each one with the exact analytical model (:mod:`sim.perf`, equal to the
cycle model).

* :func:`legal_plans` enumerates every plan the emission accepts for a config
  (capacities from :func:`mappings.lowering.plan_needs`, the highest scratchpad
  and accumulator addresses the emitted program uses), in canonical form:
  os ``mb = mt*R``, ``mt <= ceil(M/R)``; ws ``mt = 1``, ``mb <= M``, ``kc`` a
  multiple of R (or K when K is shorter); ``nt <= ceil(N/C)``; one ``kc`` per
  number of reduction chunks (the smallest, i.e. balanced chunks); both loop
  orders only when they differ (with one m block or one n block the two orders
  emit the same program).
* :func:`best_plan` returns the cheapest plan: exhaustive over
  :func:`legal_plans` when there are at most ``exhaustive_limit`` of them,
  otherwise the reduced search described in :func:`_search`; the estimate-based
  ``plan_tiles`` plan is always a candidate, so the result is never worse.
  With ``dataflow=None`` on a ``both`` array this is the per-layer dataflow choice.

Cycles do not depend on the scratchpad depths (they only decide which plans
fit), so plans are costed on the config with every depth at its maximum: one
evaluation serves every memory split (:mod:`mappings.ilp` relies on this).
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import time
from functools import lru_cache
from typing import Callable, Iterator

from hwgen.config import AcceleratorConfig, Controller
from hwgen.dataflow import STATIONARY, Dataflow

import sim.perf
import sim.tiling
from sim.perf import ConvShape, GemmShape, LayerPerf, closed_perf, layer_perf
from sim.tiling import LoweringError, Plan, cdiv

from .lowering import check_plan, plan_needs, plan_tiles
from . import pipelined
from .pipelined import decoupled_bound, decoupled_perf, decoupled_tight_bound, in_order

__all__ = ["executed_plan", "EXECUTED_PER_CHANNEL", "legal_plans", "count_legal_plans", "best_plan", "plan_cycles", "network_plans", "DEFAULT_EXHAUSTIVE_LIMIT",
           "DEFAULT_PROXY_KEEP", "clear_cache"]

#: best_plan enumerates every legal plan up to this many (an evaluation costs ~0.3-20 ms).
DEFAULT_EXHAUSTIVE_LIMIT = 400
#: the reduced search of a convolution ranks plans by its GEMM's cycles, then costs this many exactly.
DEFAULT_PROXY_KEEP = 24
#: decoupled controller: plans ranked by the bound (then in-order cycles) that are costed exactly.
DEFAULT_DECOUPLED_KEEP = 6

_MAX_DEPTH = 1 << 16


def _dataflows(cfg: AcceleratorConfig, dataflow: str | None) -> list[Dataflow]:
    if dataflow is None:
        return list(cfg.dataflow.modes)
    if dataflow not in STATIONARY:
        raise LoweringError(f"dataflow must be 'os' or 'ws', not {dataflow!r}")
    if dataflow not in cfg.dataflow.modes:
        raise LoweringError(f"config '{cfg.name}' (dataflow '{cfg.dataflow}') does not support '{dataflow}'")
    return [Dataflow(dataflow)]


def _counts(n: int) -> list[int]:
    """The distinct numbers of blocks ceil(n / size) over block sizes 1..n (ascending)."""
    return sorted({cdiv(n, s) for s in range(1, n + 1)})


def _balanced(n: int, count: int) -> int:
    """The block size that cuts n items into ``count`` blocks as evenly as the lowering can."""
    return cdiv(n, count)


def _orders(n_mb: int, n_nb: int) -> tuple[str, ...]:
    """The loop orders that emit different programs: with one m block or one n block both walk the
    blocks in the same sequence."""
    return ("m", "n") if n_mb > 1 and n_nb > 1 else ("m",)


def _fits(cfg: AcceleratorConfig, needs: tuple[int, int, int]) -> bool:
    return needs[0] <= cfg.a_spad_depth and needs[1] <= cfg.w_spad_depth and needs[2] <= cfg.acc_depth


def _os_kcs(K: int) -> list[int]:
    """One chunk length per number of chunks (balanced), longest first."""
    return sorted({cdiv(K, c) for c in _counts(K)}, reverse=True)


def _ws_kcs(K: int, R: int) -> list[int]:
    Kt = cdiv(K, R)
    return sorted({min(K, cdiv(Kt, c) * R) for c in _counts(Kt)}, reverse=True)


def legal_plans(cfg: AcceleratorConfig, M: int, K: int, N: int, dataflow: str | None = None,
                groups: int = 1) -> Iterator[Plan]:
    """Every plan (canonical form, see the module docstring) the lowering accepts for an M x K x N
    GEMM (``groups`` of them, a grouped convolution: it matters for the decoupled controller's double
    buffers, :func:`mappings.lowering.plan_needs`) on ``cfg`` (``dataflow`` None: every supported one).
    ``cost`` is 0 (not estimated).

    The needs grow with the block sizes, except that with the decoupled controller a memory with a
    single fill needs no second half: the last block size (one n block, one m block) is tried even
    after a smaller one failed."""
    db = cfg.controller is Controller.DECOUPLED
    if min(M, K, N) < 1:
        raise LoweringError(f"empty GEMM {M}x{K}x{N}")
    R, C = cfg.rows, cfg.cols
    Mt, Nt = cdiv(M, R), cdiv(N, C)
    for df in _dataflows(cfg, dataflow):
        kcs = _os_kcs(K) if df == Dataflow.OS else _ws_kcs(K, R)
        for kc in kcs:
            if df == Dataflow.OS:
                for mt in range(1, Mt + 1):
                    if mt * kc > cfg.a_spad_depth:
                        break
                    failed = False
                    for nt in range(1, Nt + 1):
                        if failed and nt < Nt:
                            continue
                        p = Plan(Dataflow.OS, kc, mt, mt * R, nt, "m", 0)
                        if not _fits(cfg, plan_needs(cfg, M, K, N, p, groups)):
                            if db and nt < Nt:
                                failed = True
                                continue
                            break
                        for order in _orders(cdiv(Mt, mt), cdiv(Nt, nt)):
                            yield p if order == "m" else dataclasses.replace(p, order=order)
            else:
                for nt in range(1, Nt + 1):
                    failed = False
                    for mb in range(1, M + 1):
                        if failed and mb < M:
                            continue
                        p = Plan(Dataflow.WS, kc, 1, mb, nt, "m", 0)
                        if not _fits(cfg, plan_needs(cfg, M, K, N, p, groups)):
                            if db and mb < M:
                                failed = True
                                continue
                            break
                        for order in _orders(cdiv(M, mb), cdiv(Nt, nt)):
                            yield p if order == "m" else dataclasses.replace(p, order=order)


def count_legal_plans(cfg: AcceleratorConfig, M: int, K: int, N: int, dataflow: str | None = None,
                      stop: int | None = None, groups: int = 1) -> int:
    """len(list(legal_plans(...))), counting at most ``stop`` + 1."""
    n = 0
    for _ in legal_plans(cfg, M, K, N, dataflow, groups):
        n += 1
        if stop is not None and n > stop:
            break
    return n


# ------------------------------------------------------------------ costing
def _eval_cfg(cfg: AcceleratorConfig) -> AcceleratorConfig:
    """``cfg`` with every depth at the ISA maximum: cycles do not depend on the depths, so one
    evaluation serves every memory split (and the perf memo hits across them)."""
    return dataclasses.replace(cfg, name="mapper-eval", a_spad_depth=_MAX_DEPTH, w_spad_depth=_MAX_DEPTH,
                               acc_depth=_MAX_DEPTH)


@lru_cache(maxsize=1 << 18)
def _perf(ecfg: AcceleratorConfig, shape, plan: Plan, per_channel: bool) -> LayerPerf:
    if ecfg.controller is Controller.DECOUPLED:  # the schedule of the emitted double-buffered program
        return decoupled_perf(ecfg, shape, plan, per_channel)
    return layer_perf(ecfg, shape, plan, per_channel)


def plan_cycles(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, plan: Plan, per_channel: bool = False) -> int:
    """The exact cycles of ``shape`` lowered with ``plan`` (capacity not checked; memoised): :mod:`sim.perf`'s
    for the in-order controller, :func:`mappings.pipelined.decoupled_cycles` for the decoupled one."""
    return _perf(_eval_cfg(cfg), shape, dataclasses.replace(plan, cost=0), bool(per_channel)).cycles


# ------------------------------------------------------------------ reduced search
def _thin(vals: list[int], first: int, cap: int) -> list[int]:
    """``vals`` (ascending) thinned to about ``cap``: the first ``first`` values, then a geometric spread."""
    if len(vals) <= cap:
        return vals
    out = vals[:first]
    rest = vals[first:]
    k = cap - first
    idx = {int(round((len(rest) - 1) * (i / (k - 1)) ** 2)) for i in range(k)} if k > 1 else {0}
    return out + [rest[i] for i in sorted(idx)]


def _largest(lo: int, hi: int, ok) -> int:
    """The largest v in [lo, hi] with ok(v) (ok monotone: true up to a point), or lo - 1."""
    if hi < lo or not ok(lo):
        return lo - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _seeds(cfg: AcceleratorConfig, M: int, K: int, N: int, df: str, kc_cap: int = 16, blk_cap: int = 8,
           groups: int = 1) -> list[Plan]:
    """Candidate plans around the capacity limits (see :func:`_search`)."""
    R, C = cfg.rows, cfg.cols
    Mt, Nt = cdiv(M, R), cdiv(N, C)
    out: list[Plan] = []

    def fits(p: Plan) -> bool:
        return _fits(cfg, plan_needs(cfg, M, K, N, p, groups))

    kcs = _os_kcs(K) if df == Dataflow.OS else _ws_kcs(K, R)
    if df == Dataflow.OS:
        kcs = [kc for kc in kcs if fits(Plan(Dataflow.OS, kc, 1, R, 1, "m", 0))]
    else:
        kcs = [kc for kc in kcs if fits(Plan(Dataflow.WS, kc, 1, 1, 1, "m", 0))]
    for kc in _thin(kcs, 8, kc_cap):  # longest chunks (fewest chunks) first
        if df == Dataflow.OS:
            mt_max = _largest(1, Mt, lambda v: fits(Plan(Dataflow.OS, kc, v, v * R, 1, "m", 0)))
            for nmb in _thin([c for c in _counts(Mt) if _balanced(Mt, c) <= mt_max], blk_cap // 2, blk_cap):
                mt = _balanced(Mt, nmb)
                nt_max = _largest(1, Nt, lambda v: fits(Plan(Dataflow.OS, kc, mt, mt * R, v, "m", 0)))
                if nt_max < 1:
                    continue
                nt = _balanced(Nt, cdiv(Nt, nt_max))
                out.append(Plan(Dataflow.OS, kc, mt, mt * R, nt, "m", 0))
            nt_max = _largest(1, Nt, lambda v: fits(Plan(Dataflow.OS, kc, 1, R, v, "m", 0)))
            for nnb in _thin([c for c in _counts(Nt) if _balanced(Nt, c) <= nt_max], blk_cap // 2, blk_cap):
                nt = _balanced(Nt, nnb)
                mt_max = _largest(1, Mt, lambda v: fits(Plan(Dataflow.OS, kc, v, v * R, nt, "m", 0)))
                if mt_max < 1:
                    continue
                mt = _balanced(Mt, cdiv(Mt, mt_max))
                out.append(Plan(Dataflow.OS, kc, mt, mt * R, nt, "m", 0))
        else:
            nt_max = _largest(1, Nt, lambda v: fits(Plan(Dataflow.WS, kc, 1, 1, v, "m", 0)))
            for nnb in _thin([c for c in _counts(Nt) if _balanced(Nt, c) <= nt_max], blk_cap // 2, blk_cap):
                nt = _balanced(Nt, nnb)
                mb_max = _largest(1, M, lambda v: fits(Plan(Dataflow.WS, kc, 1, v, nt, "m", 0)))
                if mb_max < 1:
                    continue
                n_mb = cdiv(M, mb_max)
                for c in (n_mb, n_mb + 1):  # the balanced fit and one more block
                    if c <= M:
                        out.append(Plan(Dataflow.WS, kc, 1, _balanced(M, c), nt, "m", 0))
    return out


def _with_orders(plans, M: int, N: int, cfg: AcceleratorConfig) -> list[Plan]:
    out = []
    for p in plans:
        n_mb = cdiv(M, p.mb)
        n_nb = cdiv(cdiv(N, cfg.cols), p.nt)
        for order in _orders(n_mb, n_nb):
            out.append(dataclasses.replace(p, order=order, cost=0))
    return out


def _neighbours(cfg: AcceleratorConfig, M: int, K: int, N: int, p: Plan, groups: int = 1) -> list[Plan]:
    """Plans one step away in count space: one chunk, one m block or one n block more or fewer (balanced,
    and the unbalanced block size one tile/row either side), or the other loop order."""
    R, C = cfg.rows, cfg.cols
    Mt, Nt = cdiv(M, R), cdiv(N, C)
    out = []
    if p.dataflow == Dataflow.OS:
        n_k = cdiv(K, p.kc)
        for c in (n_k - 1, n_k + 1):
            if 1 <= c <= K:
                out.append(dataclasses.replace(p, kc=cdiv(K, c)))
        nmb = cdiv(Mt, p.mt)
        mts = {p.mt - 1, p.mt + 1} | {_balanced(Mt, c) for c in (nmb - 1, nmb + 1) if 1 <= c <= Mt}
        out += [dataclasses.replace(p, mt=v, mb=v * R) for v in mts if 1 <= v <= Mt]
    else:
        Kt = cdiv(K, R)
        n_k = cdiv(Kt, cdiv(p.kc, R))
        for c in (n_k - 1, n_k + 1):
            if 1 <= c <= Kt:
                out.append(dataclasses.replace(p, kc=min(K, cdiv(Kt, c) * R)))
        nmb = cdiv(M, p.mb)
        mbs = {p.mb - 1, p.mb + 1} | {_balanced(M, c) for c in (nmb - 1, nmb + 1) if 1 <= c <= M}
        out += [dataclasses.replace(p, mb=v) for v in mbs if 1 <= v <= M]
    nnb = cdiv(Nt, p.nt)
    nts = {p.nt - 1, p.nt + 1} | {_balanced(Nt, c) for c in (nnb - 1, nnb + 1) if 1 <= c <= Nt}
    out += [dataclasses.replace(p, nt=v) for v in nts if 1 <= v <= Nt]
    out.append(dataclasses.replace(p, order="n" if p.order == "m" else "m"))
    res = []
    for q in out:
        q = dataclasses.replace(q, cost=0)
        if q != p and _fits(cfg, plan_needs(cfg, M, K, N, q, groups)) and \
                q.order in _orders(cdiv(M, q.mb), cdiv(Nt, q.nt)):
            res.append(q)
    return res


class _Scores(dict):
    """Plans costed by ``cost`` (a dict plan -> cost), which knows when a plan need not be costed.

    A plan is skipped when its lower bound ``lower`` (a closed form, microseconds against the cost's
    milliseconds) ranks it, (bound, plan text), after the ``need``-th best key costed so far, and, with
    ``also``, its ``also`` key after the best ``also`` key so far: the plan cannot be among the ``need``
    best (nor the best by ``also``) of the search that costs everything, since costing more plans only
    moves those thresholds down. Every later use of the scores (the climbs' starts, the proxy's keep,
    the decoupled finalists and their best by in-order cycles) reads only those, so the search returns
    the same plan and cycles as without the skipping, having costed fewer plans."""

    def __init__(self, cost, lower=None, need: int = 1, also=None) -> None:
        super().__init__()
        self.cost, self.lower, self.need, self.also = cost, lower, need, also
        self._keys: list = []  # sorted (cost, plan text) of every costed plan
        self._also_best = None
        self.skipped = 0

    def score(self, p: Plan):
        c = self.get(p)
        if c is None:
            c = self[p] = self.cost(p)
            key = (c, str(p))
            bisect.insort(self._keys, key)
            if self.also is not None:
                akey = (self.also(c), key[1])
                if self._also_best is None or akey < self._also_best:
                    self._also_best = akey
        return c

    def skippable(self, p: Plan, beyond=None) -> bool:
        """Whether ``p`` (not yet costed) cannot matter: see the class; ``beyond``, a climb's current
        cost, which the plan must also exceed to be no move."""
        if self.lower is None or p in self or len(self._keys) < self.need:
            return False
        lb = self.lower(p)
        key = (lb, str(p))
        if key <= self._keys[self.need - 1] or (beyond is not None and not lb > beyond):
            return False
        if self.also is not None and (self.also(lb), key[1]) <= self._also_best:
            return False
        self.skipped += 1
        return True


def _climb(cfg: AcceleratorConfig, M: int, K: int, N: int, start: Plan, scored: _Scores, groups: int = 1) -> None:
    """Hill-climb from ``start``: move to the cheapest neighbour while it is cheaper (records every
    evaluation in ``scored``; a neighbour whose lower bound exceeds the current cost is no move)."""
    cur, cur_c = start, scored.score(start)
    while True:
        best, best_c = None, cur_c
        for q in _neighbours(cfg, M, K, N, cur, groups):
            if scored.skippable(q, cur_c):
                continue
            c = scored.score(q)
            if c < best_c or (best is not None and c == best_c and str(q) < str(best)):
                best, best_c = q, c
        if best is None:
            return
        cur, cur_c = best, best_c


def _ranked(scored: dict) -> list[Plan]:
    return sorted(scored, key=lambda p: (scored[p], str(p)))


def _search(cfg: AcceleratorConfig, M: int, K: int, N: int, dfs: list[str], seeds: list[Plan], cost,
            proxy=None, keep: int = DEFAULT_PROXY_KEEP, groups: int = 1, lower=None, need: int = 1,
            also=None, proxy_lower=None) -> tuple[Plan, int, int, int]:
    """The reduced search, for spaces larger than the exhaustive limit.

    1. Candidates (per dataflow): up to 8 chunk lengths (the 4 with the fewest chunks that fit, then a
       quadratic spread of the rest), and for each, blocks at the capacity limits: for about 6 numbers
       of m blocks (the fewest, then spread) the widest n block that still fits, and for about 6
       numbers of n blocks the tallest m block (ws: that m block and one with one more block), all
       balanced; both loop orders where they differ. Plus ``seeds`` (plan_tiles' plans). About
       100-300 plans.
    2. Local refinement: from the 3 best, repeatedly move to the cheapest neighbour (one chunk /
       m block / n block more or fewer, block size +-1 tile or row, the other loop order) while it is
       cheaper.
    3. With a ``proxy`` (for convolutions: the cycles of the GEMM of the same M x K x N, which has
       the same computes, stores and W fills and differs only in the A fills, ~10-100x cheaper to
       evaluate): steps 1-2 rank plans by the proxy; then the ``keep`` best by proxy and the seeds
       are costed exactly and step 2 is repeated from the exact best with the exact cost.
    ``lower`` and ``proxy_lower``: lower bounds on the cost and the proxy of a plan (closed forms); plans
    that they prove cannot matter are not costed (:class:`_Scores`; ``need`` and ``also``: what the caller
    reads of the exact scores besides the best). Candidates are costed in the order of that bound, so
    the thresholds fall early. Returns (plan, exact cycles, plans costed exactly, plans costed by the
    proxy), and leaves the exact scores in ``cost``'s memo where the caller keeps one."""
    first, first_lower = (proxy, proxy_lower) if proxy else (cost, lower)
    cands: list[Plan] = []
    for df in dfs:
        cands += _with_orders(_seeds(cfg, M, K, N, df, groups=groups), M, N, cfg)
    cands += seeds
    climbs = 5
    scored = _Scores(first, first_lower, max(climbs, keep) if proxy else max(climbs, need), None if proxy else also)
    cands = list(dict.fromkeys(cands))
    if first_lower is not None:
        cands.sort(key=lambda p: (first_lower(p), str(p)))
    for p in cands:
        if not scored.skippable(p):
            scored.score(p)
    for p in _ranked(scored)[:climbs]:
        _climb(cfg, M, K, N, p, scored, groups)
    if proxy is None:
        best = _ranked(scored)[0]
        return best, scored[best], len(scored), 0
    exact = _Scores(cost, lower, need, also)
    for p in seeds:  # always costed
        exact.score(p)
    for p in sorted(_ranked(scored)[:keep], key=lambda p: (lower(p), str(p)) if lower else 0):
        if not exact.skippable(p):
            exact.score(p)
    _climb(cfg, M, K, N, _ranked(exact)[0], exact, groups)
    best = _ranked(exact)[0]
    return best, exact[best], len(exact), len(scored)


# ------------------------------------------------------------------ best plan
def _shape_gemm(shape) -> tuple[int, int, int]:
    if isinstance(shape, (GemmShape, ConvShape)):
        return shape.gemm
    raise TypeError(f"shape must be a GemmShape or a ConvShape, not {type(shape).__name__}")


#: Networks run with every layer requantized through the quantization table (``load target=q``, ``store
#: qtable=1``): the per-channel rule serves per-tensor weights too. The executor lowers layers so, and
#: ``hwgen map`` and fault-injection network workloads plan them so (:func:`executed_plan`).
EXECUTED_PER_CHANNEL = True


def executed_plan(cfg: AcceleratorConfig, shape: GemmShape | ConvShape,
                  dataflow: str | None = None) -> tuple[Plan, LayerPerf]:
    """The plan (and its exact counts) a network layer of ``shape`` runs with: :func:`best_plan` with the
    quantization table. The one planner of the executor, the network map and network workloads, so that
    mapped, executed and injected cycles agree."""
    plan, perf, _ = best_plan(cfg, shape, per_channel=EXECUTED_PER_CHANNEL, dataflow=dataflow)
    return plan, perf


def best_plan(cfg: AcceleratorConfig, shape: GemmShape | ConvShape, per_channel: bool = False,
              dataflow: str | None = None, exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT,
              proxy_keep: int = DEFAULT_PROXY_KEEP) -> tuple[Plan, LayerPerf, dict]:
    """The plan of least exact cycles for ``shape`` on ``cfg`` (``dataflow`` None: any supported one,
    i.e. the per-layer dataflow choice on a ``both`` array).

    Exhaustive over :func:`legal_plans` when there are at most ``exhaustive_limit`` of them, else
    the reduced search of :func:`_search`. ``plan_tiles``' plan (per dataflow) is always a
    candidate, so the result is never worse than it. Returns (plan with ``cost`` = its exact cycles,
    its :class:`~sim.perf.LayerPerf` on ``cfg``, info: ``method`` 'exhaustive'/'search', ``space``
    (number of legal plans, or None when over the limit), ``evaluated`` (plans costed exactly),
    ``proxy_evaluated`` (plans ranked by the GEMM proxy, convolutions in the reduced search),
    ``seconds``, ``baseline_cycles`` (plan_tiles' choice) and ``baseline_plan``). Memoised.
    ``proxy_keep`` = 0 disables the proxy (every plan of the reduced search costed exactly)."""
    return _best_plan(_search_cfg(cfg), shape, bool(per_channel), dataflow, int(exhaustive_limit), int(proxy_keep))


def _search_cfg(cfg: AcceleratorConfig) -> AcceleratorConfig:
    """``cfg`` with the fields no plan's legality or cycles depend on set to fixed values: the name and the
    operand, accumulator and output widths (every element is one host byte and one scratchpad lane
    whatever its width; the widths only bound the values, which lowering checks). So design points that
    differ only in widths share one search (the memo hits), as a width sweep of ``hwgen dse`` does."""
    return dataclasses.replace(cfg, name="mapper-search", input_width=8, weight_width=8, acc_width=32,
                               output_width=8, max_reduction=4096)


@lru_cache(maxsize=4096)
def _best_plan(cfg: AcceleratorConfig, shape, per_channel: bool, dataflow: str | None,
               exhaustive_limit: int, proxy_keep: int) -> tuple[Plan, LayerPerf, dict]:
    t0 = time.perf_counter()
    M, K, N = _shape_gemm(shape)
    dfs = _dataflows(cfg, dataflow)
    ecfg = _eval_cfg(cfg)

    def cost(p: Plan) -> int:
        return _perf(ecfg, shape, p, per_channel).cycles

    G = getattr(shape, "groups", 1)
    seeds = []
    for df in dfs:
        p = dataclasses.replace(plan_tiles(cfg, M, K, N, df), cost=0)
        check_plan(cfg, M, K, N, p, groups=G)
        seeds.append(p)
    base_plan = dataclasses.replace(plan_tiles(cfg, M, K, N, dataflow), cost=0)
    base_cycles = cost(base_plan)
    space = count_legal_plans(cfg, M, K, N, dataflow, stop=exhaustive_limit, groups=G)
    if cfg.controller is Controller.DECOUPLED:
        method, best, best_c, n, n_proxy = _decoupled_search(cfg, ecfg, shape, per_channel, dataflow, dfs, seeds,
                                                             cost, space <= exhaustive_limit, proxy_keep)
        space = space if method == "exhaustive" else None
    elif space <= exhaustive_limit:
        method = "exhaustive"
        best, best_c, n, n_proxy = None, None, 0, 0
        for p in legal_plans(cfg, M, K, N, dataflow):
            c = cost(p)
            n += 1
            if best_c is None or (c, str(p)) < (best_c, str(best)):
                best, best_c = p, c
        for p in seeds:  # canonical already, but keep the guarantee explicit
            c = cost(p)
            if (c, str(p)) < (best_c, str(best)):
                best, best_c = p, c
    else:
        method, space = "search", None
        proxy = None
        if isinstance(shape, ConvShape) and proxy_keep:  # rank by the cheaper GEMM of the same M x K x N
            gemm = GemmShape(M, K, N, shape.packed_weights)
            proxy = lambda p: _perf(ecfg, gemm, p, per_channel).cycles  # noqa: E731
        best, best_c, n, n_proxy = _search(cfg, M, K, N, dfs, seeds, cost, proxy, proxy_keep)
    plan = dataclasses.replace(best, cost=best_c)
    # the evaluation config's counts are ``cfg``'s: no LayerPerf field depends on the depths (the memo hits)
    perf = _perf(ecfg, shape, best, per_channel)
    assert perf.cycles == best_c <= base_cycles
    info = dict(method=method, space=space, evaluated=n, proxy_evaluated=n_proxy, seconds=time.perf_counter() - t0,
                baseline_cycles=base_cycles, baseline_plan=base_plan)
    return plan, perf, info


def _decoupled_search(cfg: AcceleratorConfig, ecfg: AcceleratorConfig, shape, per_channel: bool,
                      dataflow: str | None, dfs: list, seeds: list[Plan], cost, exhaustive: bool,
                      proxy_keep: int = DEFAULT_PROXY_KEEP, keep: int = DEFAULT_DECOUPLED_KEEP) -> tuple[str, Plan, int, int, int]:
    """The plan search for the decoupled controller, whose exact cost (emit the program and schedule it,
    :mod:`mappings.pipelined`) is 100-1000x dearer than :mod:`sim.perf`'s closed forms.

    Candidates are ranked by (:func:`mappings.pipelined.decoupled_bound`, in-order cycles), both from
    :mod:`sim.perf` on the in-order copy of the config: every legal plan when there are at most the
    exhaustive limit of them, else the reduced search of :func:`_search` with that ranking as its
    cost (for a convolution, with the rank of the GEMM of the same M x K x N as its proxy, as in
    order). Of the ``keep`` best by rank, the best by in-order cycles and the seeds (plan_tiles' plans),
    the cheapest exact cost wins. They are costed in the order of a tighter lower bound
    (:func:`mappings.pipelined.decoupled_tight_bound`, which counts the pipeline's fill and drain and is
    often exact), and once that bound exceeds the best exact cost so far the rest are not costed (they
    cannot win, so the winner is the same; typically one or two plans are costed instead of six).
    Returns (method, plan, exact cycles, plans costed exactly,
    plans ranked by the layer's own counts)."""
    M, K, N = _shape_gemm(shape)
    G = getattr(shape, "groups", 1)
    icfg = in_order(ecfg)
    ranked: dict[Plan, tuple[int, int]] = {}

    def rank(p: Plan) -> tuple[int, int]:
        r = ranked.get(p)
        if r is None:
            perf = _perf(icfg, shape, p, per_channel)
            r = ranked[p] = (decoupled_bound(ecfg, perf, p.dataflow), perf.cycles)
        return r

    def gemm_rank(p: Plan) -> tuple[int, int]:
        perf = _perf(icfg, GemmShape(M, K, N, shape.packed_weights), p, per_channel)
        return decoupled_bound(ecfg, perf, p.dataflow), perf.cycles

    def lower(s) -> Callable[[Plan], tuple[int, int]]:  # a lower bound on the rank of a plan for ``s``
        @lru_cache(maxsize=None)
        def bound(p: Plan) -> tuple[int, int]:
            perf = closed_perf(icfg, s, p)
            return decoupled_bound(ecfg, perf, p.dataflow), perf.cycles
        return bound

    def in_order_cycles(r: tuple[int, int]) -> int:
        return r[1]

    if exhaustive:
        method = "exhaustive"
        scores = _Scores(rank, lower(shape), keep, in_order_cycles)
        for p in seeds:
            scores.score(p)
        for p in sorted(legal_plans(cfg, M, K, N, dataflow, G), key=lambda p: (scores.lower(p), str(p))):
            if not scores.skippable(p):
                scores.score(p)
    else:
        method = "search"
        conv = isinstance(shape, ConvShape) and proxy_keep
        _search(cfg, M, K, N, dfs, seeds, rank, gemm_rank if conv else None, proxy_keep, G, lower=lower(shape),
                need=keep, also=in_order_cycles, proxy_lower=lower(GemmShape(M, K, N, shape.packed_weights)))
    for p in seeds:
        rank(p)
    order = sorted(ranked, key=lambda p: (ranked[p], str(p)))
    by_in_order = min(ranked, key=lambda p: (ranked[p][1], str(p)))
    finalists = dict.fromkeys(order[:keep] + [by_in_order] + seeds)
    # costed in the order of their lower bounds, the tight bound computed only when a plan's rank bound
    # comes first (heap entries: (bound, plan text, tight?, plan)); a popped tight bound above the best
    # exact cost ends the loop: every plan left has a bound at least as high (same winner)
    heap = [(ranked[p][0], str(p), False, p) for p in finalists]
    heapq.heapify(heap)
    exact: dict[Plan, int] = {}
    best = None
    while heap:
        b, text, tight, p = heapq.heappop(heap)
        if best is not None and (b, text) > (exact[best], str(best)):
            break  # this lower bound, and every later one, already loses to the best exact cost (same winner)
        if not tight:
            heapq.heappush(heap, (max(b, decoupled_tight_bound(ecfg, shape, p, per_channel)), text, True, p))
            continue
        exact[p] = cost(p)
        if best is None or (exact[p], str(p)) < (exact[best], str(best)):
            best = p
    return method, best, exact[best], len(exact), len(ranked)


def network_plans(cfg: AcceleratorConfig, shapes, per_channel: bool = False, dataflow: str | None = None,
                  exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT, proxy_keep: int = DEFAULT_PROXY_KEEP
                  ) -> list[tuple[Plan, LayerPerf, dict]]:
    """:func:`best_plan` of every layer (repeated shapes are searched once)."""
    return [best_plan(cfg, s, per_channel, dataflow, exhaustive_limit, proxy_keep) for s in shapes]


def clear_cache() -> None:
    """Forget every memoised plan search and cost (this module's, :mod:`mappings.pipelined`'s,
    :mod:`sim.perf`'s and :mod:`sim.tiling`'s): a cold start, e.g. to time the mapper."""
    _best_plan.cache_clear()
    _perf.cache_clear()
    pipelined.clear_cache()
    sim.perf.clear_cache()
    sim.tiling.clear_cache()
