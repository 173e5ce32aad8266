"""Protection by ILP (issue 11 item 4): one safety mechanism (or none) per structure, least added area, such
that the target ASIL's SPFM and LFM *lower bounds* hold.

Inputs. Per :class:`Structure`: its state bits and their kind ("ff" or "mem"), so lambda_s = bits x FIT/bit
of that kind (:class:`~fault_injection.stats.FitRates`). Per :class:`ProtectionOption` (a structure and a
:class:`~hwgen.safety.Mechanism`, or ``None`` for "unprotected"): the bits the mechanism adds (check bits
fail too, so the option's lambda_s,o = (bits_s + added_bits_o) x FIT/bit), the area it adds (in the caller's
units: synthesised LUTs, um^2, a cost model's figure; only comparisons and sums are made) and its
:class:`Evidence`: outcome counts of injections into that structure *under that option* (for ``None`` the
baseline campaign's; for a mechanism either measured on a protected design or predicted, e.g. by
:func:`predicted_evidence`), with the source recorded so a report can say which bounds are proven and which
are forecasts. Which mechanisms a structure can take is :data:`hwgen.safety.APPLICABLE` (one table for the
configuration check, the generator and this ILP), so a structure here is one unit of choice: a fault-report
structure, or a protectable part covering several of one kind (give their summed bits and summed counts); a
structure no mechanism applies to takes part with its unprotected option alone.

Bounds. Per option with n > 0 injections, k_d of them dangerous (:func:`~fault_injection.stats.fault_class`:
sdc + due, or sdc alone with ``watchdog``) and k_l latent, one-sided Clopper-Pearson upper bounds
u_d = UB(k_d, n) and u_l = UB(k_l, n), each at confidence 1 - alpha / J; an option without injections is
bounded as fully dangerous and fully latent (u_d = u_l = 1, no alpha spent), as
:func:`~fault_injection.stats.hardware_metrics` does. With one-hot binaries x_s,o (one option per structure)
and the totals

    Lambda = sum lambda_s,o x_s,o,   D+ = sum lambda_s,o u_d,s,o x_s,o,   L+ = sum lambda_s,o u_l,s,o x_s,o

the bounds are SPFM_lower = 1 - D+ / Lambda and LFM_lower = 1 - L+ / (Lambda - D+) (the latent share of the
faults that are not single-point/residual; stats' formula). Both are ratios of linear forms, but a ratio
bounded by a target is linear once multiplied out, because every denominator is positive:

    SPFM_lower >= t_S   <=>   sum (u_d - (1 - t_S)) lambda x <= 0
    LFM_lower  >= t_L   <=>   sum (u_l + (1 - t_L) u_d - (1 - t_L)) lambda x <= 0

(the second needs Lambda - D+ > 0, which the first guarantees: it leaves Lambda - D+ >= t_S Lambda > 0). So
the ILP is exact: minimise sum area_s,o x_s,o over these two rows and the one-hot rows (pulp, CBC, rows
scaled by the largest Lambda). The chosen design's bounds are then recomputed from the ratios; a choice CBC's
tolerance let past a row by more than 1e-12 is cut off and the model solved again, so a returned choice meets
the targets by the same test as :func:`brute_force_protection` and :func:`~fault_injection.stats.supported_asil`.

Why the bound is sound (Bonferroni). For one fixed design the bounds it uses are 2 per structure (dangerous
and latent); if each fails with probability at most alpha / J and J >= 2 x structures, the union bound
(Bonferroni's inequality, which needs no independence between the bounds, nor between the dangerous and
latent counts of one campaign) gives P(any fails) <= alpha, so all of them hold together with probability
>= 1 - alpha. Then D+ and L+ bound the true dangerous and latent FIT together, and SPFM_lower and
LFM_lower (the LFM bound grows in both, so using both upper bounds is the worst case) hold together at the
stated one-sided confidence. Sampling without replacement from a finite fault space makes the binomial
bounds conservative. ``alpha_split``:

* :attr:`AlphaSplit.STRUCTURES` (default): J = 2 x structures with at least one injected option, the split
  for one design taken as given (the same J as stats' for that design). The ILP chooses the design looking at
  the same counts, so this is the *predicted* bound of the choice; the proof is the re-run campaign on the
  protected design (fresh injections; item 4's loop), or:
* :attr:`AlphaSplit.OPTIONS`: J = 2 x injected (structure, option) pairs, so that *every* option's bounds hold
  at once with probability >= 1 - alpha, hence those of whichever combination the ILP picks, however it
  picked: a bound valid for the data-dependent choice, at the cost of a larger J.

Why it is conservative compared with a pooled bound. Each structure pays its own Clopper-Pearson margin at
alpha / J, and the margins add. In the normal approximation, with injections proportional to lambda
(n_s = N lambda_s / Lambda, a self-weighting sample), the margins sum to z_(alpha/J) sqrt(Lambda / N)
sum_s sqrt(lambda_s p_s), where one bound on the pooled sample (stats' ``"pooled"`` method) pays
z_(alpha/2) sqrt(Lambda / N) sqrt(sum_s lambda_s p_s): a smaller quantile, and the per-structure terms
combined in quadrature instead of summed (sum of square roots >= square root of the sum). The pooled bound,
however, is one number for one sample of one design: it does not split into per-structure terms a linear
program can switch on and off per option, and its validity needs the allocation proportional to the chosen
design's lambda, which changes with the choice (check bits). Per-option terms are what make the ILP exact;
the price is a looser (never a wrong) bound.

When no choice meets the target, :class:`ProtectionTargetError` names the metric and the best achievable
bound: SPFM's best over all choices (exact: a fractional program over one-hot choices, solved by Dinkelbach's
iteration, separable per structure), else LFM's best among the choices meeting the SPFM target (Dinkelbach
with an ILP per step).
"""

from __future__ import annotations

import itertools
import math
import numbers
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from hwgen.cbc import solve_exact
from hwgen.errors import HwgenError
from hwgen.safety import APPLICABLE, Mechanism

from .faults import OUTCOMES, Outcome
from .stats import ASIL_LFM, ASIL_SPFM, Asil, FaultClass, FitRates, Metric, StatsError, fault_class, upper_bound

__all__ = ["ProtectionError", "ProtectionTargetError", "EvidenceSource", "AlphaSplit", "Evidence", "Structure",
           "ProtectionOption", "StructureChoice", "Protection", "predicted_evidence", "choose_protection",
           "brute_force_protection", "BRUTE_FORCE_LIMIT", "KINDS"]

#: site kinds a structure's bits can be (:attr:`fault_injection.faults.Site.kind`)
KINDS = ("ff", "mem")
#: :func:`brute_force_protection` refuses more combinations than this
BRUTE_FORCE_LIMIT = 2_000_000
#: a bound meets its target when within this of it (the tolerance of :func:`stats.asil_for_spfm`)
_TOL = 1e-12


class ProtectionError(HwgenError, ValueError):
    """Protection inputs that cannot be used (a field out of its domain, an option for an unknown structure,
    a mechanism a structure cannot take); the message names the field and the limit."""


class ProtectionTargetError(ProtectionError):
    """No choice of mechanisms meets the target: ``metric`` is the one that cannot be met (SPFM, or LFM among
    the choices meeting SPFM), ``best`` its best achievable lower bound and ``choice`` a choice reaching it."""

    def __init__(self, message: str, *, metric: Metric, target: float, best: float,
                 choice: Mapping[str, Mechanism | None]) -> None:
        super().__init__(message)
        self.metric = metric
        self.target = target
        self.best = best
        self.choice = dict(choice)


class EvidenceSource(StrEnum):
    """Where an option's outcome counts come from: injected into that design, or forecast from another."""

    MEASURED = "measured"    #: a campaign on the design with this option (for None: the baseline campaign)
    PREDICTED = "predicted"  #: derived from another campaign (e.g. :func:`predicted_evidence`); not a proof


class AlphaSplit(StrEnum):
    """Over how many Clopper-Pearson bounds the error probability is split (module docstring)."""

    STRUCTURES = "structures"  #: 2 per structure: the bound of one design taken as given
    OPTIONS = "options"        #: 2 per injected option: every option's bounds at once, any choice covered


def _is_count(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class Evidence:
    """Injection outcome counts of one structure under one option, and their source. ``counts`` maps
    outcomes (:data:`~fault_injection.faults.OUTCOMES`) to non-negative integers; an optional ``"n"`` is
    checked against their sum (as :meth:`fault_injection.store.CampaignStore.tally` gives it). Stored
    normalised: every outcome present, no ``"n"``."""

    counts: Mapping[str, int]
    source: EvidenceSource = EvidenceSource.MEASURED
    note: str = ""  #: how it was obtained (campaign database, prediction rule), for the report

    def __post_init__(self) -> None:
        if not isinstance(self.counts, Mapping):
            raise ProtectionError(f"evidence counts must map outcomes to counts, got {type(self.counts).__name__}")
        try:
            source = EvidenceSource(self.source)
        except ValueError:
            raise ProtectionError(f"evidence source must be one of {', '.join(EvidenceSource)}, "
                                  f"got {self.source!r:.60}") from None
        out = {o: 0 for o in OUTCOMES}
        for outcome, k in self.counts.items():
            if outcome == "n":
                continue
            if outcome not in out:
                raise ProtectionError(f"evidence outcome {outcome!r:.40} is not one of {', '.join(OUTCOMES)}")
            if not _is_count(k):
                raise ProtectionError(f"evidence count of {outcome!r:.40} must be a non-negative integer, "
                                      f"got {k!r:.60}")
            out[str(outcome)] += int(k)
        if "n" in self.counts and self.counts["n"] != sum(out.values()):
            raise ProtectionError(f"evidence n = {self.counts['n']!r:.40}, but the outcomes sum to "
                                  f"{sum(out.values())}")
        object.__setattr__(self, "counts", out)
        object.__setattr__(self, "source", source)

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def count(self, cls: FaultClass, *, watchdog: bool) -> int:
        """Injections of ISO 26262 class ``cls`` (:func:`~fault_injection.stats.fault_class`)."""
        return sum(k for o, k in self.counts.items() if fault_class(o, watchdog=watchdog) is cls)


#: the memory codes' outcome for a consumed corrupted word (a checksum or a voter has no such simple rule)
_PREDICTED_INTO: dict[Mechanism, Outcome] = {Mechanism.PARITY: Outcome.DETECTED, Mechanism.SECDED: Outcome.CORRECTED}


def predicted_evidence(baseline: Evidence | Mapping[str, int], mechanism: Mechanism | str, *,
                       note: str = "") -> Evidence:
    """A mechanism's evidence forecast from the unprotected structure's counts: every dangerous fault (sdc,
    due) was a corrupted value that the design consumed, and a code checks every consumed word (hwgen.safety:
    detection is counted on consumption), so it becomes ``corrected`` under SECDED and ``detected`` under
    parity; masked and latent faults stay as they were (a code neither scrubs nor touches unread words).

    Assumptions, why this is a forecast (:attr:`EvidenceSource.PREDICTED`) and not a proof: at most two
    flipped bits per code word (SECDED may miscorrect three; parity misses two in one lane, so an mbu-heavy
    baseline is optimistic for parity), and the check bits behave as the data bits of their word (same
    consumption), so the fractions carry over to the option's lambda including its check bits."""
    counts = baseline.counts if isinstance(baseline, Evidence) else Evidence(baseline).counts
    try:
        mech = Mechanism(mechanism)
    except ValueError:
        raise ProtectionError(f"mechanism {mechanism!r:.40} is not one of {', '.join(Mechanism)}") from None
    if mech not in _PREDICTED_INTO:
        raise ProtectionError(f"mechanism '{mech}': no prediction rule (predicted: "
                              f"{', '.join(m.value for m in _PREDICTED_INTO)}); measure it on a protected design")
    into = _PREDICTED_INTO[mech]
    out = dict(counts)
    out[into.value] += out[Outcome.SDC.value] + out[Outcome.DUE.value]
    out[Outcome.SDC.value] = out[Outcome.DUE.value] = 0
    return Evidence(out, EvidenceSource.PREDICTED,
                    note or f"predicted from the baseline: dangerous faults {into.value} by {mech.value}")


@dataclass(frozen=True)
class Structure:
    """One unit of choice (a fault-report structure of :data:`fault_injection.faults.STRUCTURES`, or a part of
    :data:`hwgen.safety.APPLICABLE` that covers several): ``bits`` state bits, all of site kind ``kind``
    ("ff" or "mem"), which fixes their FIT per bit. One kind, because the evidence is one set of counts: the
    injected fractions weigh the bits equally, which is the FIT-weighted fraction only at one FIT per bit."""

    name: str
    kind: str
    bits: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ProtectionError(f"structure name must be a non-empty string, got {self.name!r:.60}")
        if self.kind not in KINDS:
            raise ProtectionError(f"structure '{self.name}': kind must be one of {', '.join(KINDS)}, "
                                  f"got {self.kind!r:.40}")
        if not _is_count(self.bits) or self.bits < 1:
            raise ProtectionError(f"structure '{self.name}': bits must be a positive integer, got {self.bits!r:.60}")


@dataclass(frozen=True, kw_only=True)
class ProtectionOption:
    """One way to build a structure: ``mechanism`` (None: unprotected), the state bits it adds (check bits;
    they fail too), the area it adds (caller's units, >= 0) and the :class:`Evidence` of the structure's
    outcomes under it. The unprotected option adds nothing (0 bits, 0 area)."""

    structure: str
    mechanism: Mechanism | None
    evidence: Evidence
    added_bits: int = 0
    added_area: float = 0.0

    def __post_init__(self) -> None:
        what = f"option ({self.structure!r:.40}, {self.mechanism!r:.40})"
        if self.mechanism is not None:
            try:
                object.__setattr__(self, "mechanism", Mechanism(self.mechanism))
            except ValueError:
                raise ProtectionError(f"{what}: mechanism must be None or one of {', '.join(Mechanism)}") from None
        if not isinstance(self.evidence, Evidence):
            raise ProtectionError(f"{what}: evidence must be an Evidence, got {type(self.evidence).__name__}")
        if not _is_count(self.added_bits):
            raise ProtectionError(f"{what}: added_bits must be a non-negative integer, got {self.added_bits!r:.60}")
        area = self.added_area
        if not (isinstance(area, numbers.Real) and not isinstance(area, bool) and 0.0 <= area < math.inf):
            raise ProtectionError(f"{what}: added_area must be a finite number >= 0, got {area!r:.60}")
        if self.mechanism is None and (self.added_bits or area):
            raise ProtectionError(f"{what}: the unprotected option adds no bits and no area, got added_bits "
                                  f"{self.added_bits}, added_area {area:g}")
        object.__setattr__(self, "added_area", float(area))

    @property
    def label(self) -> str:
        return f"{self.structure}={self.mechanism.value if self.mechanism else 'none'}"


@dataclass(frozen=True, kw_only=True)
class StructureChoice:
    """One structure of the result: its chosen option, its lambda (data and check bits) and its shares of
    the dangerous and latent FIT bounds (they sum to the design's)."""

    structure: str
    mechanism: Mechanism | None
    source: EvidenceSource
    bits: int                   #: data bits plus the option's added bits
    raw_fit: float              #: lambda_s,o
    n: int                      #: injections behind the bounds
    dangerous: int
    latent: int
    dangerous_fit_upper: float  #: lambda_s,o x u_d
    latent_fit_upper: float     #: lambda_s,o x u_l
    added_area: float


@dataclass(frozen=True, kw_only=True)
class Protection:
    """The cheapest choice meeting the target: one option per structure, the added area and bits, the
    predicted bounds (jointly at ``confidence``, J bounds each at ``bound_confidence``), the constraints that
    bind (those whose removal would allow less area; empty: the cheapest choice meets both anyway) and how
    much of each metric's allowance the bounds use ((1 - bound) / (1 - target); 1: exactly at the target)."""

    asil: Asil
    confidence: float
    alpha_split: AlphaSplit
    bounds: int
    bound_confidence: float
    watchdog: bool
    choice: dict[str, Mechanism | None]
    structures: list[StructureChoice]
    added_area: float
    added_bits: int
    total_fit: float
    dangerous_fit_upper: float
    latent_fit_upper: float
    spfm_target: float
    lfm_target: float
    spfm_lower: float
    lfm_lower: float
    binding: tuple[Metric, ...]
    allowance_used: dict[Metric, float]
    predicted: tuple[str, ...]  #: structures whose chosen option's evidence is predicted, not measured
    status: str
    seconds: float
    optima: int | None = None   #: choices of the least area (brute force only)
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------- problem
@dataclass(frozen=True)
class _Row:
    """One (structure, option) with its lambda and bounded FITs."""

    option: ProtectionOption
    lam: float
    d: float   # lambda x u_d
    l: float   # lambda x u_l
    k_d: int
    k_l: int


@dataclass
class _Problem:
    structures: list[Structure]
    rows: dict[str, list[_Row]]
    asil: Asil
    t_spfm: float
    t_lfm: float
    confidence: float
    split: AlphaSplit
    bounds: int
    each: float
    watchdog: bool
    scale: float  # the largest Lambda: rows divided by it

    def totals(self, choice: Mapping[str, int]) -> tuple[float, float, float]:
        rows = [self.rows[s.name][choice[s.name]] for s in self.structures]
        return sum(r.lam for r in rows), sum(r.d for r in rows), sum(r.l for r in rows)

    def bounds_of(self, choice: Mapping[str, int]) -> tuple[float, float]:
        """(SPFM_lower, LFM_lower) of a choice, from the ratios (stats' formulas and conventions)."""
        lam, d, l = self.totals(choice)
        spfm = max(0.0, 1.0 - d / lam)
        lfm = max(0.0, 1.0 - l / (lam - d)) if lam - d > 0 else 0.0
        return spfm, lfm

    def meets(self, choice: Mapping[str, int], metrics: Iterable[Metric]) -> bool:
        spfm, lfm = self.bounds_of(choice)
        ok = {Metric.SPFM: spfm >= self.t_spfm - _TOL, Metric.LFM: lfm >= self.t_lfm - _TOL}
        return all(ok[m] for m in metrics)

    def area(self, choice: Mapping[str, int]) -> float:
        return sum(self.rows[s.name][choice[s.name]].option.added_area for s in self.structures)

    def named(self, choice: Mapping[str, int]) -> dict[str, Mechanism | None]:
        return {s.name: self.rows[s.name][choice[s.name]].option.mechanism for s in self.structures}


def _asil(asil: object) -> Asil:
    try:
        level = Asil(asil)
    except ValueError:
        level = None
    if level is None or level.value not in ASIL_SPFM:
        raise ProtectionError(f"asil {asil!r:.40}: must be one of {', '.join(ASIL_SPFM)} (ISO 26262-5 sets SPFM "
                              f"and LFM targets for these only)")
    return level


def _prepare(structures: Sequence[Structure], options: Sequence[ProtectionOption], asil: Asil | str, *,
             fit: FitRates | float | None, confidence: float, watchdog: bool, alpha_split: AlphaSplit | str,
             applicable: Mapping[str, Iterable[Mechanism | str]]) -> _Problem:
    """Validate the inputs (errors name the field and the limit) and bound every option."""
    level = _asil(asil)
    if not (isinstance(confidence, numbers.Real) and not isinstance(confidence, bool) and 0.0 < confidence < 1.0):
        raise ProtectionError(f"confidence must be strictly between 0 and 1, got {confidence!r:.40}")
    if not isinstance(watchdog, bool):
        raise ProtectionError(f"watchdog must be True or False, got {watchdog!r:.40}")
    try:
        split = AlphaSplit(alpha_split)
    except ValueError:
        raise ProtectionError(f"alpha_split must be one of {', '.join(AlphaSplit)}, got {alpha_split!r:.40}") \
            from None
    try:
        rates = FitRates() if fit is None else fit if isinstance(fit, FitRates) else FitRates.uniform(fit)
    except StatsError as e:
        raise ProtectionError(f"fit: {e}") from None
    structures = list(structures)
    if not structures:
        raise ProtectionError("structures: at least one structure is needed")
    by_name: dict[str, Structure] = {}
    for s in structures:
        if not isinstance(s, Structure):
            raise ProtectionError(f"structures: expected Structure entries, got {type(s).__name__}")
        if s.name in by_name:
            raise ProtectionError(f"structure '{s.name}': given twice")
        by_name[s.name] = s
    try:
        allowed = {name: {Mechanism(m) for m in mechs} for name, mechs in applicable.items()}
    except (ValueError, TypeError, AttributeError):
        raise ProtectionError(f"applicable must map structures to mechanisms ({', '.join(Mechanism)})") from None
    grouped: dict[str, list[ProtectionOption]] = {s.name: [] for s in structures}
    for o in options:
        if not isinstance(o, ProtectionOption):
            raise ProtectionError(f"options: expected ProtectionOption entries, got {type(o).__name__}")
        if o.structure not in by_name:
            raise ProtectionError(f"option {o.label}: structure '{o.structure}' is not among the structures "
                                  f"({', '.join(by_name)})")
        if o.mechanism is not None and o.mechanism not in allowed.get(o.structure, ()):
            can = ", ".join(sorted(m.value for m in allowed.get(o.structure, ()))) or "no mechanism"
            raise ProtectionError(f"option {o.label}: {o.structure} can take {can}")
        if any(p.mechanism == o.mechanism for p in grouped[o.structure]):
            raise ProtectionError(f"option {o.label}: given twice")
        grouped[o.structure].append(o)
    for name, opts in grouped.items():
        if not opts:
            raise ProtectionError(f"structure '{name}': no option (give at least its unprotected one, "
                                  f"mechanism None, with the baseline campaign's counts)")
    live_opts = sum(1 for opts in grouped.values() for o in opts if o.evidence.n)
    live_structs = sum(1 for opts in grouped.values() if any(o.evidence.n for o in opts))
    bounds = 2 * (live_structs if split is AlphaSplit.STRUCTURES else live_opts)
    each = 1.0 - (1.0 - confidence) / max(1, bounds)
    rows: dict[str, list[_Row]] = {}
    for s in structures:
        rate = rates.of(s.kind)
        out = []
        for o in grouped[s.name]:
            lam = (s.bits + o.added_bits) * rate
            n = o.evidence.n
            k_d = o.evidence.count(FaultClass.SPF_RF, watchdog=watchdog)
            k_l = o.evidence.count(FaultClass.MPF_LATENT, watchdog=watchdog)
            u_d = upper_bound(k_d, n, each) if n else 1.0
            u_l = upper_bound(k_l, n, each) if n else 1.0
            out.append(_Row(o, lam, lam * u_d, lam * u_l, k_d, k_l))
        rows[s.name] = out
    scale = sum(max(r.lam for r in rows[s.name]) for s in structures)
    return _Problem(structures, rows, level, ASIL_SPFM[level.value], ASIL_LFM[level.value], float(confidence),
                    split, bounds, each, watchdog, scale)


# --------------------------------------------------------------------------------------------- solve
def _ilp(pb: _Problem, cost: Callable[[_Row], float], metrics: Sequence[Metric],
         time_limit: float | None) -> tuple[dict[str, int] | None, str]:
    """Minimise sum cost(row) x over one-hot choices meeting ``metrics``' linearised rows (module docstring).
    Returns (choice as structure -> option index, or None; solver status)."""
    import pulp

    prob = pulp.LpProblem("protection", pulp.LpMinimize)
    x = {s.name: [prob.add_variable(f"x_{i}_{j}", cat="Binary") for j in range(len(pb.rows[s.name]))]
         for i, s in enumerate(pb.structures)}
    every = [(r, v) for s in pb.structures for r, v in zip(pb.rows[s.name], x[s.name])]
    for s in pb.structures:
        prob += pulp.lpSum(x[s.name]) == 1
    if Metric.SPFM in metrics:
        a = 1.0 - pb.t_spfm
        prob += pulp.lpSum((r.d - a * r.lam) / pb.scale * v for r, v in every) <= 0, "spfm"
    if Metric.LFM in metrics:
        b = 1.0 - pb.t_lfm
        prob += pulp.lpSum((r.l + b * r.d - b * r.lam) / pb.scale * v for r, v in every) <= 0, "lfm"
    prob += pulp.lpSum(cost(r) * v for r, v in every)
    for _ in range(64):
        status = solve_exact(prob, time_limit)
        if status != "Optimal":
            return None, status
        choice = {s.name: max(range(len(x[s.name])), key=lambda j: x[s.name][j].value() or 0)
                  for s in pb.structures}
        if pb.meets(choice, metrics):
            return choice, status
        prob += pulp.lpSum(x[s.name][choice[s.name]] for s in pb.structures) <= len(pb.structures) - 1
    raise ProtectionError("the ILP kept returning choices that miss a target (numerical trouble)")


def _best_spfm(pb: _Problem) -> dict[str, int]:
    """The choice of the highest SPFM lower bound, i.e. least D+ / Lambda: Dinkelbach's iteration, whose
    step (least sum (d - t lam) over one-hot choices) is separable per structure. Exact: t falls strictly
    until no choice has a smaller ratio, over finitely many choices."""
    def pick(t: float) -> dict[str, int]:
        return {s.name: min(range(len(pb.rows[s.name])), key=lambda j: (pb.rows[s.name][j].d
                                                                          - t * pb.rows[s.name][j].lam))
                for s in pb.structures}

    choice = pick(1.0)
    for _ in range(1000):
        lam, d, _ = pb.totals(choice)
        nxt = pick(d / lam)
        lam2, d2, _ = pb.totals(nxt)
        if d2 - d / lam * lam2 >= -1e-15 * pb.scale:
            return choice
        choice = nxt
    return choice


def _best_lfm(pb: _Problem, start: dict[str, int], time_limit: float | None) -> dict[str, int]:
    """The choice of the highest LFM lower bound among those meeting the SPFM target (``start`` is one):
    Dinkelbach on L+ / (Lambda - D+), each step an ILP (least L+ - t (Lambda - D+) within the SPFM row)."""
    choice = start
    for _ in range(200):
        lam, d, l = pb.totals(choice)
        t = l / (lam - d)
        nxt, status = _ilp(pb, lambda r: (r.l - t * (r.lam - r.d)) / pb.scale, (Metric.SPFM,), time_limit)
        if nxt is None:
            raise ProtectionError(f"ILP solver status '{status}' while bounding the best LFM")
        lam2, d2, l2 = pb.totals(nxt)
        if l2 - t * (lam2 - d2) >= -1e-12 * pb.scale:
            return choice
        choice = nxt
    return choice


def _fmt(choice: Mapping[str, Mechanism | None]) -> str:
    return ", ".join(f"{s}={m.value if m else 'none'}" for s, m in choice.items())


def _target_error(pb: _Problem, spfm_choice: dict[str, int] | None, best_spfm: Callable[[], dict[str, int]],
                  best_lfm: Callable[[dict[str, int]], dict[str, int]]) -> ProtectionTargetError:
    """The error for an infeasible target: SPFM's best bound if even it misses (``spfm_choice`` None), else
    LFM's best among the choices meeting SPFM (``spfm_choice`` is one of them)."""
    head = f"ASIL {pb.asil} at {100 * pb.confidence:g}% one-sided confidence"
    if spfm_choice is None:
        c = best_spfm()
        best = pb.bounds_of(c)[0]
        return ProtectionTargetError(
            f"{head}: no choice of mechanisms meets SPFM >= {100 * pb.t_spfm:g}%; the best achievable SPFM "
            f"lower bound is {100 * best:.3f}% ({_fmt(pb.named(c))})",
            metric=Metric.SPFM, target=pb.t_spfm, best=best, choice=pb.named(c))
    c = best_lfm(spfm_choice)
    best = pb.bounds_of(c)[1]
    return ProtectionTargetError(
        f"{head}: no choice of mechanisms meets LFM >= {100 * pb.t_lfm:g}% together with SPFM >= "
        f"{100 * pb.t_spfm:g}%; the best achievable LFM lower bound among the choices meeting SPFM is "
        f"{100 * best:.3f}% ({_fmt(pb.named(c))})",
        metric=Metric.LFM, target=pb.t_lfm, best=best, choice=pb.named(c))


def _result(pb: _Problem, choice: dict[str, int], binding: tuple[Metric, ...], status: str, seconds: float,
            optima: int | None) -> Protection:
    per: list[StructureChoice] = []
    for s in pb.structures:
        r = pb.rows[s.name][choice[s.name]]
        per.append(StructureChoice(
            structure=s.name, mechanism=r.option.mechanism, source=r.option.evidence.source,
            bits=s.bits + r.option.added_bits, raw_fit=r.lam, n=r.option.evidence.n, dangerous=r.k_d,
            latent=r.k_l, dangerous_fit_upper=r.d, latent_fit_upper=r.l, added_area=r.option.added_area))
    lam, d, l = pb.totals(choice)
    spfm, lfm = pb.bounds_of(choice)
    predicted = tuple(c.structure for c in per if c.source is EvidenceSource.PREDICTED)
    notes = []
    if predicted:
        notes.append(f"predicted, not measured, evidence for {', '.join(predicted)}: the bounds are a forecast "
                     f"until a campaign on the protected design confirms them")
    if pb.split is AlphaSplit.STRUCTURES:
        notes.append("the bounds are those of the chosen design taken as given (alpha split over structures); "
                     "the choice was made from the same counts, so re-run a campaign on it to prove them")
    blind = [c.structure for c in per if not c.n]
    if blind:
        notes.append(f"no injections for {', '.join(blind)}: bounded as fully dangerous and fully latent")
    return Protection(
        asil=pb.asil, confidence=pb.confidence, alpha_split=pb.split, bounds=pb.bounds, bound_confidence=pb.each,
        watchdog=pb.watchdog, choice=pb.named(choice), structures=per, added_area=pb.area(choice),
        added_bits=sum(c.bits for c in per) - sum(s.bits for s in pb.structures), total_fit=lam,
        dangerous_fit_upper=d, latent_fit_upper=l, spfm_target=pb.t_spfm, lfm_target=pb.t_lfm,
        spfm_lower=spfm, lfm_lower=lfm, binding=binding,
        allowance_used={Metric.SPFM: (1.0 - spfm) / (1.0 - pb.t_spfm), Metric.LFM: (1.0 - lfm) / (1.0 - pb.t_lfm)},
        predicted=predicted, status=status, seconds=seconds, optima=optima, notes=notes)


def _area_close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def choose_protection(structures: Sequence[Structure], options: Sequence[ProtectionOption],
                      asil: Asil | str = Asil.D, *, fit: FitRates | float | None = None, confidence: float = 0.99,
                      watchdog: bool = False, alpha_split: AlphaSplit | str = AlphaSplit.STRUCTURES,
                      applicable: Mapping[str, Iterable[Mechanism | str]] = APPLICABLE,
                      time_limit: float | None = None) -> Protection:
    """One option per structure of least added area whose SPFM and LFM lower bounds meet ``asil``'s targets
    (:data:`~fault_injection.stats.ASIL_SPFM`, :data:`~fault_injection.stats.ASIL_LFM`) at one-sided
    ``confidence``, by ILP (pulp, CBC; the module docstring gives the model and why the bound is sound).

    ``fit``: raw FIT per bit (:class:`FitRates` per kind, one number for all, default the documented rates);
    ``watchdog``: due counts as detected (a declared hang/flag mechanism); ``applicable``: which mechanisms
    each structure can take (default :data:`hwgen.safety.APPLICABLE`). Raises :class:`ProtectionTargetError`
    (metric, best achievable bound, a choice reaching it) when no choice meets the target,
    :class:`ProtectionError` for inputs out of their domain."""
    t0 = time.perf_counter()
    pb = _prepare(structures, options, asil, fit=fit, confidence=confidence, watchdog=watchdog,
                  alpha_split=alpha_split, applicable=applicable)

    def area(r: _Row) -> float:
        return r.option.added_area

    both = (Metric.SPFM, Metric.LFM)
    choice, status = _ilp(pb, area, both, time_limit)
    if choice is None:
        if status != "Infeasible":
            raise ProtectionError(f"ILP solver status '{status}'")
        spfm_only, st = _ilp(pb, area, (Metric.SPFM,), time_limit)
        if spfm_only is None and st != "Infeasible":
            raise ProtectionError(f"ILP solver status '{st}'")
        raise _target_error(pb, spfm_only, lambda: _best_spfm(pb), lambda c: _best_lfm(pb, c, time_limit))
    best = pb.area(choice)
    binding = []
    for m in both:
        relaxed, st = _ilp(pb, area, tuple(k for k in both if k is not m), time_limit)
        if relaxed is None:
            raise ProtectionError(f"ILP solver status '{st}' with the {m} row dropped")
        if pb.area(relaxed) < best and not _area_close(pb.area(relaxed), best):
            binding.append(m)
    return _result(pb, choice, tuple(binding), status, time.perf_counter() - t0, None)


def brute_force_protection(structures: Sequence[Structure], options: Sequence[ProtectionOption],
                           asil: Asil | str = Asil.D, *, fit: FitRates | float | None = None,
                           confidence: float = 0.99, watchdog: bool = False,
                           alpha_split: AlphaSplit | str = AlphaSplit.STRUCTURES,
                           applicable: Mapping[str, Iterable[Mechanism | str]] = APPLICABLE) -> Protection:
    """:func:`choose_protection` by enumerating every combination, from the ratio forms of the bounds (no
    linearisation): for tests and small cases. Among equal areas (relative 1e-9) the higher SPFM bound wins,
    then the higher LFM bound, then the first in enumeration order; ``optima`` counts the least-area choices.
    Raises the same errors, with the best bounds found by enumeration."""
    t0 = time.perf_counter()
    pb = _prepare(structures, options, asil, fit=fit, confidence=confidence, watchdog=watchdog,
                  alpha_split=alpha_split, applicable=applicable)
    names = [s.name for s in pb.structures]
    count = math.prod(len(pb.rows[n]) for n in names)
    if count > BRUTE_FORCE_LIMIT:
        raise ProtectionError(f"{count} combinations to enumerate, more than the limit of {BRUTE_FORCE_LIMIT}")
    combos = [dict(zip(names, c)) for c in itertools.product(*(range(len(pb.rows[n])) for n in names))]
    both = (Metric.SPFM, Metric.LFM)

    def cheapest(metrics: Sequence[Metric]) -> list[dict[str, int]]:
        ok = [c for c in combos if pb.meets(c, metrics)]
        if not ok:
            return []
        least = min(pb.area(c) for c in ok)
        return [c for c in ok if _area_close(pb.area(c), least)]

    optimal = cheapest(both)
    if not optimal:
        spfm_ok = [c for c in combos if pb.meets(c, (Metric.SPFM,))]
        raise _target_error(pb, spfm_ok[0] if spfm_ok else None,
                            lambda: max(combos, key=lambda c: pb.bounds_of(c)[0]),
                            lambda _: max(spfm_ok, key=lambda c: pb.bounds_of(c)[1]))
    choice = max(optimal, key=lambda c: pb.bounds_of(c))
    best = pb.area(choice)
    binding = []
    for m in both:
        relaxed = pb.area(cheapest(tuple(k for k in both if k is not m))[0])
        if relaxed < best and not _area_close(relaxed, best):
            binding.append(m)
    return _result(pb, choice, tuple(binding), "Optimal (enumerated)", time.perf_counter() - t0, len(optimal))
