"""Whole-network on-chip memory split: scratchpad and accumulator depths plus every layer's plan, by ILP.

Given a network's compute layers, a base :class:`~hwgen.config.AcceleratorConfig`
(array size, widths, port), candidate depths for the A scratchpad, the W
scratchpad and the accumulator buffer, and an SRAM budget in bytes::

    a_depth*R*input_width/8 + w_depth*C*weight_width/8 + acc_depth*C*acc_width/8 <= budget

:func:`memory_split` picks one depth of each kind and one plan per layer so
that every plan fits the chosen depths and the network's total cycles (exact,
:mod:`sim.perf`) are least. The depths couple all layers (one choice serves
the whole network) and the plan choices interact through them, which is where
an integer program pays: with D_a x D_w x D_acc depth combinations the
enumeration (:func:`brute_force_memory_split`, kept for tests) costs one
minimum per layer per combination, the ILP one solve.

**Candidate plans.** A plan's cycles do not depend on the depths (only whether
it fits), so each candidate is costed once (on the config with the largest
depths). A plan's requirement is ``(need_a, need_w, need_acc)``
(:func:`mappings.lowering.plan_needs`). The candidates of a layer are, for
every depth combination, the plan :func:`mappings.mapper.best_plan` picks on
that combination's config (``exhaustive_limit`` passed on); then only the
cheapest plan per *requirement level* (the smallest candidate depth of each
kind that satisfies each need) is kept: plans with the same levels fit exactly
the same combinations. Layers with the same shape are one group weighted by
their count.

**Model** (pulp, CBC, messages off): binaries ``ya[i]``, ``yw[j]``,
``yc[k]`` (one-hot: one depth of each kind), ``x[l, p]`` (layer group l uses
plan p; one per group); ``x[l, p] <= sum of ya[i] over depths a_i >= need_a(p)``
and the same for w and acc; the budget is linear in the one-hot choices;
objective ``sum count_l * cycles(l, p) * x[l, p]``.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from typing import Sequence

from hwgen.cbc import solve_exact
from hwgen.config import AcceleratorConfig, ConfigError
from sim.perf import ConvShape, GemmShape
from sim.tiling import Plan

from .lowering import plan_needs
from .mapper import DEFAULT_EXHAUSTIVE_LIMIT, best_plan
from hwgen.errors import HwgenError

__all__ = ["MemorySplit", "MemorySplitError", "memory_split", "brute_force_memory_split", "sram_bytes",
           "candidate_plans"]


class MemorySplitError(HwgenError, ValueError):
    """No depth choice within the budget (or no valid depth of some kind); the message says which."""


@dataclass(frozen=True)
class MemorySplit:
    """The result: ``cfg`` (the base with the chosen depths), one plan (``cost`` = exact cycles) and
    its cycles per input layer, the total, the SRAM bytes used, the solver's status and timings."""

    cfg: AcceleratorConfig
    plans: list[Plan]
    cycles: list[int]
    total_cycles: int
    sram_bytes: float
    status: str
    solve_seconds: float
    candidate_seconds: float
    candidates: int          #: candidate (layer group, plan) pairs in the model
    combinations: int        #: depth combinations (D_a * D_w * D_acc)


def sram_bytes(base: AcceleratorConfig, a: int, w: int, acc: int) -> float:
    """On-chip bytes of the three memories (the quantization table is not counted)."""
    return (a * base.rows * base.input_width + w * base.cols * base.weight_width + acc * base.cols * base.acc_width) / 8


def _with_depths(base: AcceleratorConfig, a: int, w: int, acc: int) -> AcceleratorConfig:
    return dataclasses.replace(base, a_spad_depth=a, w_spad_depth=w, acc_depth=acc)


def _valid_depths(base: AcceleratorConfig, fld: str, depths: Sequence[int]) -> list[int]:
    vals = sorted(set(int(d) for d in depths))
    if not vals:
        raise MemorySplitError(f"no candidate depths for {fld}")
    ok = []
    for d in vals:
        try:
            dataclasses.replace(base, **{fld: d})
        except ConfigError:
            continue
        ok.append(d)
    if not ok:
        raise MemorySplitError(f"none of the candidate depths {vals} for {fld} is valid for config "
                               f"'{base.name}' (rows {base.rows}, dataflow '{base.dataflow}')")
    return ok


def _groups(layers) -> tuple[list, list[int]]:
    """Distinct shapes (in first-seen order) and, per input layer, its group index."""
    index: dict = {}
    shapes: list = []
    of: list[int] = []
    for s in layers:
        if not isinstance(s, (GemmShape, ConvShape)):
            raise TypeError(f"layers must be GemmShape or ConvShape, not {type(s).__name__}")
        if s not in index:
            index[s] = len(shapes)
            shapes.append(s)
        of.append(index[s])
    return shapes, of


def _level(depths: list[int], need: int) -> int | None:
    """Index of the smallest depth >= need, or None."""
    for i, d in enumerate(depths):
        if d >= need:
            return i
    return None


def candidate_plans(base: AcceleratorConfig, shape, a_depths: list[int], w_depths: list[int], acc_depths: list[int],
                    per_channel: bool = False, dataflow: str | None = None,
                    exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT) -> list[tuple[Plan, int, tuple[int, int, int]]]:
    """(plan, cycles, (level_a, level_w, level_acc)) per requirement level: the best_plan of every
    depth combination, the cheapest per level (levels index the sorted depth lists)."""
    M, K, N = shape.gemm
    best: dict[tuple[int, int, int], tuple[Plan, int]] = {}
    seen: set[Plan] = set()
    for a, w, acc in itertools.product(a_depths, w_depths, acc_depths):
        cfg = _with_depths(base, a, w, acc)
        plan, perf, _ = best_plan(cfg, shape, per_channel, dataflow, exhaustive_limit)
        plan = dataclasses.replace(plan, cost=perf.cycles)
        if plan in seen:
            continue
        seen.add(plan)
        na, nw, nc = plan_needs(cfg, M, K, N, plan, getattr(shape, "groups", 1))
        lv = (_level(a_depths, na), _level(w_depths, nw), _level(acc_depths, nc))
        if lv not in best or perf.cycles < best[lv][1]:
            best[lv] = (plan, perf.cycles)
    return [(p, c, lv) for lv, (p, c) in sorted(best.items())]


def _prepare(layers, base, a_depths, w_depths, acc_depths, per_channel, dataflow, exhaustive_limit):
    A = _valid_depths(base, "a_spad_depth", a_depths)
    W = _valid_depths(base, "w_spad_depth", w_depths)
    Cc = _valid_depths(base, "acc_depth", acc_depths)
    shapes, of = _groups(layers)
    if not shapes:
        raise MemorySplitError("no layers")
    counts = [of.count(g) for g in range(len(shapes))]
    t0 = time.perf_counter()
    cands = [candidate_plans(base, s, A, W, Cc, per_channel, dataflow, exhaustive_limit) for s in shapes]
    return A, W, Cc, shapes, of, counts, cands, time.perf_counter() - t0


def _check_budget(base, A, W, Cc, budget) -> None:
    smallest = sram_bytes(base, A[0], W[0], Cc[0])
    if smallest > budget:
        raise MemorySplitError(f"SRAM budget {budget} bytes is below the smallest candidate split "
                               f"(a {A[0]}, w {W[0]}, acc {Cc[0]} words: {smallest:g} bytes)")


def _result(base, layers_of, shapes, A, W, Cc, choice, plans_g, status, t_solve, t_cand, n_cands) -> MemorySplit:
    a, w, acc = choice
    cfg = _with_depths(base, a, w, acc)
    plans = [plans_g[g] for g in layers_of]
    cycles = [p.cost for p in plans]
    for s, p in zip((shapes[g] for g in layers_of), plans):  # the contract: every plan fits the chosen depths
        need = plan_needs(cfg, *s.gemm, p, getattr(s, "groups", 1))
        assert need[0] <= a and need[1] <= w and need[2] <= acc, (s, p, need, choice)
    return MemorySplit(cfg, plans, cycles, sum(cycles), sram_bytes(base, a, w, acc), status, t_solve, t_cand,
                       n_cands, len(A) * len(W) * len(Cc))


def memory_split(layers: Sequence[GemmShape | ConvShape], base: AcceleratorConfig, a_depths: Sequence[int],
                 w_depths: Sequence[int], acc_depths: Sequence[int], budget_bytes: float, per_channel: bool = False,
                 dataflow: str | None = None, exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT,
                 time_limit: float | None = None) -> MemorySplit:
    """The depths (one candidate of each kind) and per-layer plans of least total cycles within
    ``budget_bytes`` (see the module docstring), solved as an ILP with pulp/CBC.

    Raises :class:`MemorySplitError` when no split fits the budget (or no depth of a kind is valid
    for the base config)."""
    import pulp

    A, W, Cc, shapes, of, counts, cands, t_cand = _prepare(layers, base, a_depths, w_depths, acc_depths,
                                                          per_channel, dataflow, exhaustive_limit)
    _check_budget(base, A, W, Cc, budget_bytes)
    t0 = time.perf_counter()
    prob = pulp.LpProblem("memory_split", pulp.LpMinimize)
    ya = [prob.add_variable(f"ya_{i}", cat="Binary") for i in range(len(A))]
    yw = [prob.add_variable(f"yw_{j}", cat="Binary") for j in range(len(W))]
    yc = [prob.add_variable(f"yc_{k}", cat="Binary") for k in range(len(Cc))]
    prob += pulp.lpSum(ya) == 1
    prob += pulp.lpSum(yw) == 1
    prob += pulp.lpSum(yc) == 1
    rb, cb = base.rows, base.cols
    # bytes * 8 (integral coefficients)
    prob += (pulp.lpSum(a * rb * base.input_width * y for a, y in zip(A, ya))
             + pulp.lpSum(w * cb * base.weight_width * y for w, y in zip(W, yw))
             + pulp.lpSum(c * cb * base.acc_width * y for c, y in zip(Cc, yc))) <= budget_bytes * 8, "budget"
    x: list[list] = []
    obj = []
    for g, cl in enumerate(cands):
        xs = []
        for p_i, (plan, cyc, (la, lw, lc)) in enumerate(cl):
            v = prob.add_variable(f"x_{g}_{p_i}", cat="Binary")
            xs.append(v)
            obj.append(counts[g] * cyc * v)
            prob += v <= pulp.lpSum(ya[la:])
            prob += v <= pulp.lpSum(yw[lw:])
            prob += v <= pulp.lpSum(yc[lc:])
        prob += pulp.lpSum(xs) == 1
        x.append(xs)
    prob += pulp.lpSum(obj)
    status = solve_exact(prob, time_limit)
    t_solve = time.perf_counter() - t0
    if status != "Optimal":
        if status == "Infeasible":
            raise MemorySplitError(f"no depth split within the SRAM budget of {budget_bytes} bytes fits every "
                                   f"layer (candidate depths a {A}, w {W}, acc {Cc})")
        raise MemorySplitError(f"ILP solver status '{status}'")

    def pick(vs):
        return max(range(len(vs)), key=lambda i: vs[i].value() or 0)

    choice = (A[pick(ya)], W[pick(yw)], Cc[pick(yc)])
    plans_g = [cands[g][pick(x[g])][0] for g in range(len(shapes))]
    return _result(base, of, shapes, A, W, Cc, choice, plans_g, status, t_solve, t_cand,
                   sum(len(c) for c in cands))


def brute_force_memory_split(layers: Sequence[GemmShape | ConvShape], base: AcceleratorConfig,
                             a_depths: Sequence[int], w_depths: Sequence[int], acc_depths: Sequence[int],
                             budget_bytes: float, per_channel: bool = False, dataflow: str | None = None,
                             exhaustive_limit: int = DEFAULT_EXHAUSTIVE_LIMIT) -> MemorySplit:
    """:func:`memory_split` by enumeration: every depth combination within the budget, each layer's
    cheapest fitting candidate; ties broken towards the smaller SRAM. For tests and small spaces."""
    A, W, Cc, shapes, of, counts, cands, t_cand = _prepare(layers, base, a_depths, w_depths, acc_depths,
                                                          per_channel, dataflow, exhaustive_limit)
    _check_budget(base, A, W, Cc, budget_bytes)
    t0 = time.perf_counter()
    best = None
    for (ia, a), (iw, w), (ic, c) in itertools.product(enumerate(A), enumerate(W), enumerate(Cc)):
        nbytes = sram_bytes(base, a, w, c)
        if nbytes > budget_bytes:
            continue
        total, chosen = 0, []
        for g, cl in enumerate(cands):
            fit = [(cyc, p) for p, cyc, (la, lw, lc) in cl if la <= ia and lw <= iw and lc <= ic]
            if not fit:
                break
            cyc, p = min(fit, key=lambda t: (t[0], str(t[1])))
            total += counts[g] * cyc
            chosen.append(p)
        else:
            key = (total, nbytes)
            if best is None or key < best[0]:
                best = (key, (a, w, c), chosen)
    if best is None:
        raise MemorySplitError(f"no depth split within the SRAM budget of {budget_bytes} bytes fits every "
                               f"layer (candidate depths a {A}, w {W}, acc {Cc})")
    return _result(base, of, shapes, A, W, Cc, best[1], best[2], "Optimal (enumerated)", time.perf_counter() - t0,
                   t_cand, sum(len(c) for c in cands))
