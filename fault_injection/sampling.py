"""Statistical fault sampling: which faults a campaign injects.

The fault space of a structure is (every state bit of its sites) x (every cycle
of the workload). :func:`plan_faults` draws a stratified sample: the
injections are allocated to structures in proportion to bits x cycles (every
structure gets at least one when ``n`` allows), and inside a structure each
fault is uniform over (site bit / memory word, cycle), without repetition.
With one FIT/bit for the whole design this sample is self-weighting, so the
pooled dangerous fraction estimates the design's (see :func:`fault_injection.stats.spfm`).

Deterministic for a seed (numpy Generator): the same sites, cycles, n, seed and
models give the same list of faults, in the same order.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from hwgen.limits import check_limit

from .faults import FAULT_MODELS, STRUCTURES, CampaignError, Fault, Site
from .stats import leveugle_sample_size
from .store import is_int, quoted

__all__ = ["plan_faults", "per_structure_n", "sample_size", "fault_space", "applicable_models", "check_fraction",
           "check_injections"]


def check_fraction(name: str, value: object, example: str) -> float:
    """``value`` as a float if it is a number strictly between 0 and 1 (a margin, a confidence), CampaignError
    naming ``name`` otherwise: a confidence of 1 asks for an infinite sample, 0 for none."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value < 1.0:
        raise CampaignError(f"{name} must be a number strictly between 0 and 1 (e.g. {example}), got {quoted(value)}")
    return float(value)


def check_injections(n: object, what: str = "number of injections") -> int:
    """``n`` as an int if it is a positive integer within the ``injections`` limit (CampaignError or
    LimitError naming ``what`` otherwise): checked before a single fault is drawn."""
    if not is_int(n, 1, math.inf):
        raise CampaignError(f"{what} must be a positive integer, got {quoted(n)}")
    check_limit("injections", int(n), what)
    return int(n)


def _margin_size(N: int, margin: object, confidence: object, p: float) -> int:
    """Leveugle's sample size over a fault space of N points, checked against the ``injections`` limit (a
    margin of 1e-9 asks for nearly the whole space: refused with the margin, the confidence and the count)."""
    margin = check_fraction("margin", margin, "0.01 for +-1%")
    confidence = check_fraction("confidence", confidence, "0.99")
    n = leveugle_sample_size(N, margin, confidence, p)
    check_limit("injections", n, f"margin {margin:g} at confidence {confidence:g} over {N:,} fault-space points "
                                 f"(state bits x cycles): Leveugle sample size")
    return n


def applicable_models(site: Site, models: Iterable[str]) -> tuple[str, ...]:
    """The fault models of ``models`` that apply to ``site``: mbu only to memories."""
    return tuple(m for m in models if m != "mbu" or site.kind == "mem")


def _by_structure(sites: Iterable[Site]) -> dict[str, list[Site]]:
    groups: dict[str, list[Site]] = {}
    for s in sorted(sites, key=lambda s: s.name):
        groups.setdefault(s.structure, []).append(s)
    order = {name: i for i, name in enumerate(STRUCTURES)}
    return dict(sorted(groups.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def fault_space(sites: Iterable[Site], cycles: int) -> int:
    """N for Leveugle's formula: state bits x cycles."""
    return sum(s.bits for s in sites) * int(cycles)


def sample_size(sites: Iterable[Site], cycles: int, margin: float, confidence: float, p: float = 0.5) -> int:
    """Injections for the whole design at ``margin`` / ``confidence`` (Leveugle, N = bits x cycles), within the
    ``injections`` limit."""
    return _margin_size(fault_space(sites, cycles), margin, confidence, p)


def _allocate(weights: Mapping[str, int], n: int, caps: Mapping[str, int]) -> dict[str, int]:
    """Largest-remainder allocation of n proportional to weights, at least 1 each when n allows,
    never above caps (the stratum's population); what a cap refuses goes to the others."""
    names = [k for k, w in weights.items() if w > 0 and caps[k] > 0]
    out = {k: 0 for k in weights}
    n = min(n, sum(caps[k] for k in names))
    if n <= 0 or not names:
        return out
    if n >= len(names):
        for k in names:
            out[k] = 1
    remaining = n - sum(out.values())
    while remaining > 0:
        open_ = [k for k in names if out[k] < caps[k]]
        total_w = sum(weights[k] for k in open_)
        shares = {k: remaining * weights[k] / total_w for k in open_}
        give = {k: min(int(shares[k]), caps[k] - out[k]) for k in open_}
        left = remaining - sum(give.values())
        # largest remainders first, ties by report order
        for k in sorted(open_, key=lambda k: -(shares[k] - int(shares[k]))):
            if left <= 0:
                break
            if out[k] + give[k] < caps[k]:
                give[k] += 1
                left -= 1
        for k in open_:
            out[k] += give[k]
        new_remaining = n - sum(out.values())
        if new_remaining == remaining and not any(give.values()):  # pragma: no cover - caps exhausted
            break
        remaining = new_remaining
    return out


def per_structure_n(sites: Sequence[Site], cycles: int, n: int | None = None, *,
                    margin: float | None = None, confidence: float | None = None, p: float = 0.5,
                    each: bool = False, models: Sequence[str] = ("seu",)) -> dict[str, int]:
    """Injections per structure.

    * ``n`` given: n allocated in proportion to bits x cycles (at least one per
      structure when n >= number of structures), capped by each structure's fault space;
    * ``margin`` and ``confidence`` (no ``n``): n = Leveugle sample size of the
      whole fault space, allocated as above;
    * ``each=True`` with ``margin`` / ``confidence``: every structure gets its own
      Leveugle size over its own fault space (a per-structure estimate at that margin).

    Structures whose sites admit none of ``models`` (mbu only: every register
    structure) get zero.
    """
    if not is_int(cycles, 1, math.inf):
        raise CampaignError(f"cycles must be a positive integer, got {quoted(cycles)}")
    groups = {k: [s for s in v if applicable_models(s, models)] for k, v in _by_structure(sites).items()}
    bits = {k: sum(s.bits for s in v) for k, v in groups.items()}
    caps = {k: b * int(cycles) for k, b in bits.items()}
    if n is None:
        if margin is None or confidence is None:
            raise CampaignError("give a number of injections, or a margin and a confidence")
        if each:
            sizes = {k: (_margin_size(caps[k], margin, confidence, p) if caps[k] else 0) for k in groups}
            check_limit("injections", sum(sizes.values()), f"margin {margin:g} at confidence {confidence:g} per "
                                                           f"structure: Leveugle sample sizes, summed")
            return sizes
        n = _margin_size(sum(caps.values()), margin, confidence, p)
    elif not is_int(n, 0, 0):
        n = check_injections(n)
    return _allocate(bits, int(n), caps)


def _draw_structure(rng: np.random.Generator, sites: list[Site], k: int, cycles: int,
                    models: Sequence[str], mbu_nbits: int, stuck_duration: int | None) -> list[Fault]:
    """k distinct faults uniform over (bit, cycle) of ``sites``, the model uniform among those that apply."""
    bit_counts = np.array([s.bits for s in sites], dtype=np.int64)
    cum = np.cumsum(bit_counts)
    total = int(cum[-1])
    population = total * cycles
    k = min(k, population)
    if k * 2 > population:
        flat = rng.choice(population, size=k, replace=False)
    else:
        chosen: dict[int, None] = {}
        while len(chosen) < k:
            for v in rng.integers(0, population, size=k - len(chosen)).tolist():
                chosen.setdefault(int(v), None)
        flat = np.fromiter(chosen, dtype=np.int64, count=len(chosen))[:k]
    faults: list[Fault] = []
    model_pick = rng.random(k)
    for idx, v in enumerate(flat.tolist()):
        bit_index, cycle = divmod(int(v), cycles)
        si = int(np.searchsorted(cum, bit_index, side="right"))
        site = sites[si]
        offset = bit_index - (int(cum[si - 1]) if si else 0)
        word, bit = divmod(offset, site.width)
        choices = applicable_models(site, models)
        model = choices[min(int(model_pick[idx] * len(choices)), len(choices) - 1)]
        nbits, duration = 1, 1
        if model == "mbu":
            nbits = max(1, min(mbu_nbits, site.width))
            bit = int(rng.integers(0, site.width - nbits + 1))  # a burst of adjacent bits inside the word
        elif model in ("stuck0", "stuck1"):
            duration = (cycles - cycle) if stuck_duration is None else int(stuck_duration)
        faults.append(Fault(site=site.name, model=model, cycle=cycle, bit=bit, word=word,
                            nbits=nbits, duration=duration))
    return faults


def plan_faults(sites: Sequence[Site], cycles: int, n: int | None = None, seed: int = 0,
                models: Sequence[str] = ("seu",), mbu_nbits: int = 2, stuck_duration: int | None = None, *,
                margin: float | None = None, confidence: float | None = None, p: float = 0.5) -> list[Fault]:
    """A stratified random sample of faults over ``sites`` x [0, cycles).

    ``n`` injections in all (or the Leveugle size for ``margin`` / ``confidence``
    when ``n`` is None), allocated by :func:`per_structure_n`. Each fault's model
    is drawn uniformly among ``models`` that apply to its site: ``seu`` and the
    stuck-at models apply everywhere, ``mbu`` (``mbu_nbits`` adjacent bits of one
    word, the start bit uniform among those where the burst fits in the word) only
    to memories. Stuck-at faults last ``stuck_duration`` cycles (default: to the
    end of the workload). Faults come out grouped by structure
    in report order, sorted by cycle inside a structure.
    """
    unknown = [m for m in models if m not in FAULT_MODELS]
    if unknown or not models:
        raise CampaignError(f"unknown fault model(s) {unknown}; known: {', '.join(FAULT_MODELS)}")
    if not is_int(mbu_nbits, 1, math.inf):
        raise CampaignError(f"mbu_nbits must be a positive integer, got {quoted(mbu_nbits)}")
    cycles = int(cycles)
    counts = per_structure_n(sites, cycles, n, margin=margin, confidence=confidence, p=p, models=models)
    groups = _by_structure(sites)
    out: list[Fault] = []
    for structure, members in groups.items():
        k = counts.get(structure, 0)
        usable = [s for s in members if applicable_models(s, models)]
        if k <= 0 or not usable:
            continue
        # one child generator per structure: a structure's faults do not depend on the others' counts
        child = np.random.default_rng([seed, list(STRUCTURES).index(structure) if structure in STRUCTURES
                                       else len(STRUCTURES)])
        faults = _draw_structure(child, usable, k, cycles, models, mbu_nbits, stuck_duration)
        faults.sort(key=lambda f: (f.cycle, f.site, f.word, f.bit))
        out.extend(faults)
    return out
