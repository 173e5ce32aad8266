"""Statistics of fault-injection campaigns (pure Python: no scipy).

* :func:`leveugle_sample_size`: injections needed to estimate a proportion over a
  finite fault space with a given margin and confidence (Leveugle et al., DATE 2009).
* :func:`clopper_pearson`, :func:`upper_bound`, :func:`lower_bound`: exact binomial
  confidence intervals, from a regularized incomplete beta function computed by
  its continued fraction and inverted by bisection (|error| < 1e-12).
* :func:`spfm`: FIT per structure, total FIT, the single-point fault metric alone
  with a one-sided confidence bound, and the highest ASIL that bound supports.
* :func:`hardware_metrics`: the three ISO 26262-5 hardware metrics of a campaign
  (SPFM, latent-fault metric LFM, PMHF) from its outcome counts per structure and
  site kind, with one-sided Clopper-Pearson bounds that hold *jointly* at the
  stated confidence, the ASIL they support, the binding metric and the structure
  that limits it. :func:`fault_class` maps outcomes to ISO 26262's fault classes;
  :class:`FitRates` holds the raw FIT per bit of flip-flops and SRAM.

ISO 26262-5:2018 targets (tables 4, 5, 6): SPFM >= 90 % (ASIL B), >= 97 % (C),
>= 99 % (D); LFM >= 60 % (B), >= 80 % (C), >= 90 % (D); PMHF < 100 FIT (B, C),
< 10 FIT (D). ASIL A has none of these targets.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from statistics import NormalDist

from hwgen.errors import HwgenError

from .faults import OUTCOMES, Outcome

__all__ = ["StatsError", "normal_quantile", "leveugle_sample_size", "betainc", "beta_quantile", "clopper_pearson",
           "upper_bound", "lower_bound", "StructureFit", "SpfmResult", "spfm", "asil_for_spfm",
           "ASIL_SPFM", "ASIL_LFM", "ASIL_PMHF_FIT",
           "Asil", "Metric", "BoundMethod", "FaultClass", "fault_class", "FitRates", "DEFAULT_FIT_PER_BIT_FF",
           "DEFAULT_FIT_PER_BIT_MEM", "DEFAULT_LIFETIME_HOURS", "StructureMetrics", "HardwareMetrics",
           "hardware_metrics", "asil_for_lfm", "asil_for_pmhf", "supported_asil"]

#: ISO 26262-5 single-point fault metric targets, lowest ASIL first
ASIL_SPFM: dict[str, float] = {"B": 0.90, "C": 0.97, "D": 0.99}
#: latent fault metric targets, lowest ASIL first
ASIL_LFM: dict[str, float] = {"B": 0.60, "C": 0.80, "D": 0.90}
#: probabilistic metric for random hardware failures, FIT: the PMHF must be below (strictly) the limit
ASIL_PMHF_FIT: dict[str, float] = {"B": 100.0, "C": 100.0, "D": 10.0}


class StatsError(HwgenError, ValueError):
    """A statistic asked with parameters outside its domain (a confidence of 1, a margin of 0, k > n)."""


def _is_fraction(value: object) -> bool:
    """A real number strictly between 0 and 1 (NaN, infinities, booleans and text are not)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 < value < 1.0


def _check_confidence(confidence: float) -> None:
    if not _is_fraction(confidence):
        raise StatsError(f"confidence must be strictly between 0 and 1, got {confidence!r}")


def normal_quantile(confidence: float, two_sided: bool = True) -> float:
    """t such that P(|Z| <= t) = confidence (two-sided) or P(Z <= t) = confidence."""
    _check_confidence(confidence)
    q = (1.0 + confidence) / 2.0 if two_sided else confidence
    return NormalDist().inv_cdf(q)


def leveugle_sample_size(N: int | float, margin: float, confidence: float, p: float = 0.5) -> int:
    """n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p))), rounded up (Leveugle et al., DATE 2009).

    ``N`` is the size of the fault space (state bits x cycles), ``margin`` the
    half-width e of the interval (0.01 for +-1 %), t the two-sided normal quantile
    of ``confidence``, ``p`` the expected proportion (0.5 when unknown: the worst case).
    At 99 % and e = 1 %, n tends to 16,588 for large N.
    """
    _check_confidence(confidence)
    if not _is_fraction(margin):
        raise StatsError(f"margin must be strictly between 0 and 1, got {margin!r}")
    if not _is_fraction(p):
        raise StatsError(f"p must be strictly between 0 and 1, got {p!r}")
    if not (isinstance(N, numbers.Real) and not isinstance(N, bool) and 1 <= N < math.inf):
        raise StatsError(f"N must be a finite number at least 1, got {N!r}")
    t = normal_quantile(confidence)
    n = N / (1.0 + margin * margin * (N - 1) / (t * t * p * (1.0 - p)))
    return min(int(math.ceil(n - 1e-9)), int(math.ceil(N)))


# ----------------------------------------------------------------------------- incomplete beta
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta (modified Lentz), for x < (a+1)/(a+b+2)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1_000_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), a, b > 0."""
    if a <= 0 or b <= 0:
        raise StatsError("a and b must be positive")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def beta_quantile(q: float, a: float, b: float, tol: float = 1e-14) -> float:
    """x with I_x(a, b) = q, by bisection (I is increasing in x)."""
    if not 0.0 <= q <= 1.0:
        raise StatsError(f"q must be in [0, 1], got {q!r}")
    if q == 0.0:
        return 0.0
    if q == 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


def _check_counts(k: int, n: int) -> None:
    if n < 1 or k < 0 or k > n or int(k) != k or int(n) != n:
        raise StatsError(f"need integers 0 <= k <= n, n >= 1; got k={k!r}, n={n!r}")


def upper_bound(k: int, n: int, confidence: float) -> float:
    """One-sided Clopper-Pearson upper bound: P(true p <= bound) >= confidence.
    For k = 0 it is 1 - (1 - confidence)^(1/n)."""
    _check_counts(k, n)
    _check_confidence(confidence)
    if k == n:
        return 1.0
    alpha = 1.0 - confidence
    if k == 0:
        return -math.expm1(math.log(alpha) / n)
    return beta_quantile(confidence, k + 1, n - k)


def lower_bound(k: int, n: int, confidence: float) -> float:
    """One-sided Clopper-Pearson lower bound: P(true p >= bound) >= confidence."""
    _check_counts(k, n)
    _check_confidence(confidence)
    if k == 0:
        return 0.0
    alpha = 1.0 - confidence
    if k == n:
        return math.exp(math.log(alpha) / n)
    return beta_quantile(alpha, k, n - k + 1)


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval for k successes in n trials."""
    _check_confidence(confidence)
    two = (1.0 + confidence) / 2.0  # each tail gets (1 - confidence) / 2
    return lower_bound(k, n, two), upper_bound(k, n, two)


# ----------------------------------------------------------------------------- SPFM / ASIL
def asil_for_spfm(spfm_value: float) -> str | None:
    """The highest ASIL whose SPFM target ``spfm_value`` meets ("B", "C", "D"), or None."""
    best = None
    for asil, target in ASIL_SPFM.items():
        if spfm_value >= target - 1e-12:
            best = asil
    return best


@dataclass(frozen=True)
class StructureFit:
    structure: str
    bits: int
    fit_per_bit: float
    injections: int         #: n
    dangerous: int          #: k (single-point + residual: SDC, and DUE when counted dangerous)
    fraction: float         #: k / n (0 when n == 0)
    upper: float            #: one-sided upper bound of the dangerous fraction (1 when n == 0)

    @property
    def raw_fit(self) -> float:
        """lambda: FIT of the structure's bits, every fault counted."""
        return self.bits * self.fit_per_bit

    @property
    def dangerous_fit(self) -> float:
        """lambda_SPF+RF: point estimate."""
        return self.raw_fit * self.fraction

    @property
    def dangerous_fit_upper(self) -> float:
        return self.raw_fit * self.upper


@dataclass(frozen=True)
class SpfmResult:
    structures: list[StructureFit]
    confidence: float
    method: str
    total_fit: float                 #: sum of raw FIT
    dangerous_fit: float             #: point estimate of the single-point + residual FIT
    dangerous_fit_upper: float       #: its upper bound at ``confidence``
    spfm: float                      #: point estimate, 1 - dangerous / total
    spfm_lower: float                #: SPFM >= spfm_lower with probability >= confidence
    asil: str | None                 #: highest ASIL the bound supports (None: below B)
    asil_point: str | None           #: ASIL of the point estimate (for information)
    lfm: None = None                 #: latent-fault metric: not computed
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "confidence": self.confidence, "method": self.method, "total_fit": self.total_fit,
            "dangerous_fit": self.dangerous_fit, "dangerous_fit_upper": self.dangerous_fit_upper,
            "spfm": self.spfm, "spfm_lower": self.spfm_lower, "asil": self.asil, "asil_point": self.asil_point,
            "lfm": None, "notes": list(self.notes),
            "structures": [dict(structure=s.structure, bits=s.bits, fit_per_bit=s.fit_per_bit,
                                injections=s.injections, dangerous=s.dangerous, fraction=s.fraction,
                                upper=s.upper, raw_fit=s.raw_fit, dangerous_fit=s.dangerous_fit,
                                dangerous_fit_upper=s.dangerous_fit_upper) for s in self.structures],
        }


def spfm(structures: Mapping[str, Mapping[str, int]], fit_per_bit: float | Mapping[str, float],
         confidence: float = 0.99, method: str = "bonferroni") -> SpfmResult:
    """Single-point fault metric of a design from per-structure campaign counts.

    ``structures``: structure -> {"bits": state bits, "n": injections, "dangerous": k}
    (k counts the faults that are dangerous: SDC without a mechanism, residual
    SDC past one, and hangs/DUE unless a watchdog is a declared mechanism: the
    caller decides). ``fit_per_bit``: raw FIT per bit, one value or one per structure.

    lambda_s = bits_s x FIT/bit_s; dangerous FIT = sum_s lambda_s x k_s / n_s;
    SPFM = 1 - dangerous FIT / sum_s lambda_s. The one-sided bound:

    * ``"bonferroni"`` (default, valid for any allocation): each structure's
      dangerous fraction is bounded at confidence 1 - alpha/m (m structures with
      bits), so all m bounds hold together with probability >= 1 - alpha and
      SPFM >= 1 - sum_s lambda_s u_s / sum_s lambda_s;
    * ``"pooled"``: one Clopper-Pearson bound on sum k / sum n, valid when the
      injections were allocated in proportion to lambda_s (a self-weighting
      stratified sample, as :func:`fault_injection.sampling.plan_faults` does
      with a single FIT/bit), and tighter.

    A structure with bits but no injection bounds as fully dangerous (u = 1).
    """
    _check_confidence(confidence)
    if method not in ("bonferroni", "pooled"):
        raise StatsError(f"method must be 'bonferroni' or 'pooled', got {method!r}")
    alpha = 1.0 - confidence
    live = {s: v for s, v in structures.items() if int(v.get("bits", 0)) > 0}
    if not live:
        raise StatsError("no structure with state bits")
    m = len(live)
    per_conf = 1.0 - alpha / m if method == "bonferroni" else confidence
    notes: list[str] = ["latent-fault metric (LFM) not computed here: see fault_injection.stats.hardware_metrics"]
    fits: list[StructureFit] = []
    for name, v in live.items():
        bits, n, k = int(v["bits"]), int(v.get("n", 0)), int(v.get("dangerous", 0))
        fpb = float(fit_per_bit[name]) if isinstance(fit_per_bit, Mapping) else float(fit_per_bit)
        if n == 0:
            frac, up = 0.0, 1.0
            notes.append(f"{name}: no injection, bounded as fully dangerous")
        else:
            _check_counts(k, n)
            frac, up = k / n, upper_bound(k, n, per_conf)
        fits.append(StructureFit(name, bits, fpb, n, k, frac, up))
    total = sum(f.raw_fit for f in fits)
    if total <= 0:
        raise StatsError("total FIT is zero (FIT/bit must be positive)")
    dangerous = sum(f.dangerous_fit for f in fits)
    if method == "bonferroni":
        dangerous_up = sum(f.dangerous_fit_upper for f in fits)
    else:
        n_all = sum(f.injections for f in fits)
        k_all = sum(f.dangerous for f in fits)
        dangerous_up = total * (upper_bound(k_all, n_all, confidence) if n_all else 1.0)
        fpbs = {f.fit_per_bit for f in fits}
        if len(fpbs) > 1:
            notes.append("pooled bound assumes injections proportional to FIT; FIT/bit differs between structures")
    spfm_point = 1.0 - dangerous / total
    spfm_lo = max(0.0, 1.0 - dangerous_up / total)
    return SpfmResult(fits, confidence, method, total, dangerous, dangerous_up, spfm_point, spfm_lo,
                      asil_for_spfm(spfm_lo), asil_for_spfm(spfm_point), None, notes)


# ----------------------------------------------------------------------------- ISO 26262-5 hardware metrics
class Asil(StrEnum):
    """Automotive safety integrity levels, lowest first (``QM``: quality management, no safety requirement).
    The hardware metrics' targets start at B; ISO 26262-5 sets none for A, so every design meets A's."""

    QM = "QM"
    A = "A"
    B = "B"
    C = "C"
    D = "D"


_ASIL_ORDER = list(Asil)


class Metric(StrEnum):
    """The ISO 26262-5 hardware metrics."""

    SPFM = "SPFM"
    LFM = "LFM"
    PMHF = "PMHF"


class BoundMethod(StrEnum):
    """How per-structure campaign counts combine into one bound (see :func:`hardware_metrics`)."""

    BONFERRONI = "bonferroni"
    POOLED = "pooled"


class FaultClass(StrEnum):
    """ISO 26262-5 (clause 8, annex B) fault classes, as the metrics count them."""

    SAFE = "safe"                   #: no effect, nothing left in the state
    SPF_RF = "spf_rf"               #: single-point or residual: violates the goal alone
    MPF_DETECTED = "mpf_detected"   #: multiple-point, detected or corrected by a mechanism (or perceived)
    MPF_LATENT = "mpf_latent"       #: multiple-point, neither detected nor perceived


_FAULT_CLASS: dict[str, FaultClass] = {
    Outcome.MASKED: FaultClass.SAFE,
    Outcome.CORRECTED: FaultClass.MPF_DETECTED,
    Outcome.DETECTED: FaultClass.MPF_DETECTED,
    Outcome.LATENT: FaultClass.MPF_LATENT,
    Outcome.SDC: FaultClass.SPF_RF,
    Outcome.DUE: FaultClass.SPF_RF,
}
assert set(_FAULT_CLASS) == set(OUTCOMES)


def fault_class(outcome: str, *, watchdog: bool = False) -> FaultClass:
    """The ISO 26262 class of an injection's outcome: the one home of "what counts as dangerous".

    masked -> safe; corrected, detected -> multiple-point detected (dangerous only together with a failure
    of the mechanism that caught it); latent -> multiple-point latent; sdc (residual) -> single-point or
    residual; due (hang, error flag, out-of-range access) -> single-point or residual, unless a watchdog or
    hang detection is a declared safety mechanism (``watchdog=True``): then the design reaches its safe
    state and the fault is multiple-point detected."""
    if outcome not in _FAULT_CLASS:
        raise StatsError(f"outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")
    if watchdog and outcome == Outcome.DUE:
        return FaultClass.MPF_DETECTED
    return _FAULT_CLASS[outcome]


#: raw soft-error rate of an SRAM bit, FIT (failures per 1e9 device-hours), at sea level. Why this value:
#: IEC 61508-2:2010, in its note on soft errors, quotes 700-1,200 FIT/Mbit (7e-4..1.2e-3 FIT/bit) for
#: embedded memories from 130 nm-era measurements (Autran et al., IEEE TNS 54(4), 2007; Baumann, IEEE TDMR
#: 5(3), 2005), and per-bit SRAM rates have fallen with scaling since (Baumann 2005); 1e-4 FIT/bit
#: (100 FIT/Mbit, the JESD89A New York City reference flux) is the low end of the 1e-4..1e-3 range usually
#: assumed, 1e-3 the conservative end. A placeholder either way: use the technology's data.
DEFAULT_FIT_PER_BIT_MEM = 1e-4
#: raw soft-error rate of a flip-flop, FIT per bit: the same as an SRAM bit. Why: per-bit flip-flop and SRAM
#: soft-error rates of bulk CMOS are of the same order (Baumann 2005), the actual ratio depends on the cell
#: library and clock duty cycle, which this tool does not know; give the library's figure.
DEFAULT_FIT_PER_BIT_FF = 1e-4
#: operating lifetime over which latent faults accumulate, hours: about 15 years at 1.8 h a day, a usual
#: passenger-car assumption; no periodic test is assumed to clear latent faults (the conservative case).
DEFAULT_LIFETIME_HOURS = 10_000.0


def _positive_finite(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 < value < math.inf


@dataclass(frozen=True)
class FitRates:
    """Raw FIT per bit of flip-flops (site kind ``"ff"``) and of SRAM (``"mem"``): every fault counted,
    before any masking. Refused unless both are positive finite numbers."""

    ff: float = DEFAULT_FIT_PER_BIT_FF
    mem: float = DEFAULT_FIT_PER_BIT_MEM

    def __post_init__(self) -> None:
        for name, what in (("ff", "flip-flops"), ("mem", "SRAM")):
            value = getattr(self, name)
            if not _positive_finite(value):
                raise StatsError(f"FIT per bit of {what} ({name}) must be a positive finite number, "
                                 f"got {value!r:.60}")

    @classmethod
    def uniform(cls, fit_per_bit: float) -> "FitRates":
        """One FIT per bit for every bit."""
        if not _positive_finite(fit_per_bit):
            raise StatsError(f"FIT per bit must be a positive finite number, got {fit_per_bit!r:.60}")
        return cls(ff=float(fit_per_bit), mem=float(fit_per_bit))

    @property
    def single(self) -> float | None:
        """The FIT per bit every bit shares, or None when flip-flops and SRAM differ."""
        return self.ff if self.ff == self.mem else None

    def of(self, kind: str | None) -> float:
        """FIT per bit of a site kind ("ff", "mem"); ``None`` (bits not split by kind) needs one rate for all."""
        if kind == "ff":
            return self.ff
        if kind == "mem":
            return self.mem
        if kind is None:
            if self.single is None:
                raise StatsError(f"bits are not split by site kind (ff/mem), but the FIT per bit differs "
                                 f"(ff {self.ff:g}, mem {self.mem:g}): give bits and counts per (structure, kind)")
            return self.single
        raise StatsError(f"site kind {kind!r} is neither 'ff' nor 'mem'")


def asil_for_lfm(lfm_value: float) -> str | None:
    """The highest ASIL whose LFM target ``lfm_value`` meets ("B", "C", "D"), or None."""
    best = None
    for asil, target in ASIL_LFM.items():
        if lfm_value >= target - 1e-12:
            best = asil
    return best


def asil_for_pmhf(pmhf_fit: float) -> str | None:
    """The highest ASIL whose PMHF limit ``pmhf_fit`` (FIT) is strictly below ("B", "C", "D"), or None."""
    best = None
    for asil, limit in ASIL_PMHF_FIT.items():
        if pmhf_fit < limit:
            best = asil
    return best


def supported_asil(spfm_value: float, lfm_value: float, pmhf_fit: float) -> Asil:
    """The highest ASIL all three metrics meet; ``Asil.A`` when they meet no ASIL B target (A has none)."""
    levels = [asil_for_spfm(spfm_value), asil_for_lfm(lfm_value), asil_for_pmhf(pmhf_fit)]
    if None in levels:
        return Asil.A
    return min((Asil(x) for x in levels), key=_ASIL_ORDER.index)


@dataclass(frozen=True)
class StructureMetrics:
    """One structure's (or one stratum's: a structure's bits of one FIT per bit) part of the metrics.

    Counts are by fault class (:func:`fault_class`); the ``*_upper`` FITs are this part's share of the
    design-level bounds (they sum to them), which is what names the limiting structure."""

    structure: str
    kinds: tuple[str, ...]          #: site kinds of these bits ("ff", "mem"; empty: not split by kind)
    bits: int
    fit_per_bit: float | None       #: None when the kinds' rates differ (a structure over several strata)
    raw_fit: float                  #: lambda = bits x FIT/bit
    n: int                          #: injections
    safe: int
    spf_rf: int                     #: single-point / residual
    mpf_detected: int
    mpf_latent: int
    dangerous_fit: float            #: lambda_SPF+RF, point estimate (0 with no injection)
    latent_fit: float               #: lambda_MPF,latent, point estimate
    dangerous_fit_upper: float      #: share of the bound on sum lambda_SPF+RF
    latent_fit_upper: float         #: share of the bound on sum lambda_MPF,latent
    pmhf_fit_upper: float           #: share of the PMHF bound

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d


@dataclass(frozen=True)
class HardwareMetrics:
    """SPFM, LFM and PMHF of a campaign with their one-sided bounds, jointly at ``confidence``, and the ASIL
    they support (see :func:`hardware_metrics` for the formulas and the bound)."""

    confidence: float
    method: BoundMethod
    watchdog: bool
    fit: FitRates
    lifetime_hours: float
    total_fit: float                #: sum lambda
    dangerous_fit: float            #: sum lambda_SPF+RF, point estimate
    dangerous_fit_upper: float
    latent_fit: float               #: sum lambda_MPF,latent, point estimate
    latent_fit_upper: float
    spfm: float
    spfm_lower: float
    lfm: float
    lfm_lower: float
    pmhf_fit: float
    pmhf_fit_upper: float
    asil: Asil                      #: the highest ASIL the bounds support together
    asil_point: Asil                #: the point estimates' (for information: no confidence)
    asil_by_metric: dict[Metric, Asil]
    binding: Metric                 #: the metric that stops the next ASIL (at D: the one nearest its limit)
    limiting_structure: str | None  #: largest share of the binding metric's bound
    reason: str                     #: why, in one sentence
    bounds: int                     #: Clopper-Pearson bounds the joint confidence is split over
    structures: list[StructureMetrics]
    strata: list[StructureMetrics]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"confidence": self.confidence, "method": str(self.method), "watchdog": self.watchdog,
                "fit_per_bit": {"ff": self.fit.ff, "mem": self.fit.mem}, "lifetime_hours": self.lifetime_hours,
                "total_fit": self.total_fit, "dangerous_fit": self.dangerous_fit,
                "dangerous_fit_upper": self.dangerous_fit_upper, "latent_fit": self.latent_fit,
                "latent_fit_upper": self.latent_fit_upper, "spfm": self.spfm, "spfm_lower": self.spfm_lower,
                "lfm": self.lfm, "lfm_lower": self.lfm_lower, "pmhf_fit": self.pmhf_fit,
                "pmhf_fit_upper": self.pmhf_fit_upper, "asil": str(self.asil), "asil_point": str(self.asil_point),
                "asil_by_metric": {str(k): str(v) for k, v in self.asil_by_metric.items()},
                "binding": str(self.binding), "limiting_structure": self.limiting_structure, "reason": self.reason,
                "bounds": self.bounds, "structures": [s.to_dict() for s in self.structures],
                "strata": [s.to_dict() for s in self.strata], "notes": list(self.notes)}


@dataclass
class _Stratum:
    """Working record of one stratum while the bounds are computed."""

    structure: str
    kinds: tuple[str, ...]
    fit_per_bit: float
    bits: int = 0
    classes: dict[FaultClass, int] = field(default_factory=lambda: {c: 0 for c in FaultClass})
    d_up: float = 0.0   # share of the dangerous-FIT bound
    l_up: float = 0.0   # share of the latent-FIT bound

    @property
    def n(self) -> int:
        return sum(self.classes.values())

    @property
    def raw_fit(self) -> float:
        return self.bits * self.fit_per_bit

    def fraction(self, cls: FaultClass) -> float:
        return self.classes[cls] / self.n if self.n else 0.0


def _key(key: object) -> tuple[str, str | None]:
    """A bits/counts key: "structure" (bits not split by kind) or ("structure", "ff" | "mem")."""
    if isinstance(key, str) and key:
        return key, None
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str) and key[0] and key[1] in ("ff", "mem"):
        return key[0], key[1]
    raise StatsError(f"key {key!r:.60} is neither a structure name nor a (structure, 'ff' | 'mem') pair")


def _strata(bits: Mapping, counts: Mapping, fit: FitRates, watchdog: bool) -> list[_Stratum]:
    """Strata: a structure's bits of one FIT per bit (kinds with equal rates merged: there the fraction measured
    over the structure's bits is exactly its FIT-weighted fraction), in the order the bits are given."""
    strata: dict[tuple[str, float], _Stratum] = {}
    where: dict[tuple[str, str | None], _Stratum] = {}
    for key, b in bits.items():
        structure, kind = _key(key)
        if not (isinstance(b, numbers.Integral) and not isinstance(b, bool) and b >= 0):
            raise StatsError(f"bits of {key!r:.60} must be a non-negative integer, got {b!r:.60}")
        if b == 0:
            continue
        rate = fit.of(kind)
        st = strata.setdefault((structure, rate), _Stratum(structure, (), rate))
        st.bits += int(b)
        if kind is not None and kind not in st.kinds:
            st.kinds = tuple(sorted((*st.kinds, kind)))
        where[(structure, kind)] = st
    if not strata:
        raise StatsError("no structure with state bits")
    for key, c in counts.items():
        structure, kind = _key(key)
        if not isinstance(c, Mapping):
            raise StatsError(f"counts of {key!r:.60} must map outcomes to counts, got {type(c).__name__}")
        tally = {o: v for o, v in c.items() if o != "n"}
        if (structure, kind) not in where:
            if any(tally.values()):
                raise StatsError(f"counts given for {key!r:.60}, which has no state bits")
            continue
        st = where[(structure, kind)]
        for outcome, k in tally.items():
            if not (isinstance(k, numbers.Integral) and not isinstance(k, bool) and k >= 0):
                raise StatsError(f"count of outcome {outcome!r:.40} in {key!r:.60} must be a non-negative "
                                 f"integer, got {k!r:.60}")
            st.classes[fault_class(outcome, watchdog=watchdog)] += int(k)
        if "n" in c and c["n"] != sum(tally.values()):
            raise StatsError(f"counts of {key!r:.60}: n = {c['n']!r:.40}, but the outcomes sum to "
                             f"{sum(tally.values())}")
    return list(strata.values())


def _bonferroni(strata: list[_Stratum], alpha: float) -> int:
    """Each injected stratum's dangerous and latent fractions bounded at 1 - alpha / J (J = 2 x injected
    strata), so all J hold together with probability >= 1 - alpha; a stratum without injection bounds as
    fully dangerous and fully latent (no statement, no alpha spent). Sets the shares; returns J."""
    live = [s for s in strata if s.n]
    bounds = 2 * len(live)
    for s in strata:
        if s.n:
            conf = 1.0 - alpha / bounds
            s.d_up = s.raw_fit * upper_bound(s.classes[FaultClass.SPF_RF], s.n, conf)
            s.l_up = s.raw_fit * upper_bound(s.classes[FaultClass.MPF_LATENT], s.n, conf)
        else:
            s.d_up = s.l_up = s.raw_fit
    return bounds


def _pooled(strata: list[_Stratum], alpha: float, total: float) -> int:
    """One Clopper-Pearson bound on the pooled dangerous count and one on the latent count, each at
    1 - alpha / 2, plus the FIT the allocation left short: with N injections, stratum s is owed n_s* =
    N lambda_s / Lambda; sum_s lambda_s p_s <= Lambda (sum_s n_s p_s) / N + sum_s max(0, lambda_s - n_s Lambda / N)
    for any fractions p_s in [0, 1], and (sum_s n_s p_s) / N is the mean that the pooled count bounds
    (Hoeffding 1956: a sum of binomials of unequal p is more concentrated than one binomial of their mean,
    so the bound keeps its confidence). With injections proportional to lambda (one FIT per bit and
    sampling.plan_faults) the shortfall is rounding. Sets the shares; returns the number of bounds (2)."""
    n_all = sum(s.n for s in strata)
    if n_all == 0:
        for s in strata:
            s.d_up = s.l_up = s.raw_fit
        return 0
    conf = 1.0 - alpha / 2.0
    for cls, attr in ((FaultClass.SPF_RF, "d_up"), (FaultClass.MPF_LATENT, "l_up")):
        k_all = sum(s.classes[cls] for s in strata)
        u = upper_bound(k_all, n_all, conf)
        shares = []
        for s in strata:
            # the pooled bound spread over the strata: each its observed count plus its injections' part of
            # the bound's margin (u - k/N), and its shortfall counted fully
            shortfall = max(0.0, s.raw_fit - s.n * total / n_all)
            shares.append(total / n_all * (s.classes[cls] + s.n * (u - k_all / n_all)) + shortfall)
        whole = sum(shares)
        scale = min(1.0, total / whole) if whole > 0 else 1.0  # a bound above Lambda says only "everything"
        for s, share in zip(strata, shares):
            setattr(s, attr, share * scale)
    return 2


def _excess(metric: Metric, level: str, spfm_lo: float, lfm_lo: float, pmhf_up: float) -> float:
    """How many times its allowance at ``level`` a metric's bound uses (> 1: misses the target): the
    dangerous share over 1 - SPFM target, the latent share over 1 - LFM target, the PMHF over its limit."""
    if metric is Metric.SPFM:
        return (1.0 - spfm_lo) / (1.0 - ASIL_SPFM[level])
    if metric is Metric.LFM:
        return (1.0 - lfm_lo) / (1.0 - ASIL_LFM[level])
    return pmhf_up / ASIL_PMHF_FIT[level]


def _aggregate(strata: list[_Stratum], dual: float) -> tuple[list[StructureMetrics], list[StructureMetrics]]:
    """Per-stratum and per-structure records (the structures in the strata's order)."""

    def record(structure: str, group: list[_Stratum]) -> StructureMetrics:
        rates = {s.fit_per_bit for s in group}
        cls = {c: sum(s.classes[c] for s in group) for c in FaultClass}
        d_up = sum(s.d_up for s in group)
        l_up = sum(s.l_up for s in group)
        return StructureMetrics(
            structure=structure, kinds=tuple(sorted({k for s in group for k in s.kinds})),
            bits=sum(s.bits for s in group), fit_per_bit=rates.pop() if len(rates) == 1 else None,
            raw_fit=sum(s.raw_fit for s in group), n=sum(s.n for s in group), safe=cls[FaultClass.SAFE],
            spf_rf=cls[FaultClass.SPF_RF], mpf_detected=cls[FaultClass.MPF_DETECTED],
            mpf_latent=cls[FaultClass.MPF_LATENT],
            dangerous_fit=sum(s.raw_fit * s.fraction(FaultClass.SPF_RF) for s in group),
            latent_fit=sum(s.raw_fit * s.fraction(FaultClass.MPF_LATENT) for s in group),
            dangerous_fit_upper=d_up, latent_fit_upper=l_up, pmhf_fit_upper=d_up + l_up * dual)

    per_stratum = [record(s.structure, [s]) for s in strata]
    names = list(dict.fromkeys(s.structure for s in strata))
    per_structure = [record(name, [s for s in strata if s.structure == name]) for name in names]
    return per_stratum, per_structure


def hardware_metrics(bits: Mapping, counts: Mapping, *, fit: FitRates | float | None = None,
                     confidence: float = 0.99, method: BoundMethod | str = BoundMethod.BONFERRONI,
                     watchdog: bool = False, lifetime_hours: float = DEFAULT_LIFETIME_HOURS) -> HardwareMetrics:
    """ISO 26262-5 hardware metrics of a campaign, with one-sided bounds that hold jointly at ``confidence``.

    ``bits``: state bits per ``(structure, kind)`` (kind "ff" or "mem", :attr:`Site.kind`), or per structure
    when one FIT per bit serves every bit; ``counts``: outcome counts (:data:`~fault_injection.faults.OUTCOMES`,
    an optional "n" checked against their sum) under the same keys, for example
    :meth:`fault_injection.store.CampaignStore.tally`. ``fit``: :class:`FitRates` (default: the documented
    defaults), or one number for every bit.

    Per stratum s (a structure's bits of one FIT per bit): lambda_s = bits_s x FIT/bit_s, and the fractions of
    its injections in each fault class (:func:`fault_class`: dangerous = sdc + due, or sdc alone with
    ``watchdog``) give lambda_SPF+RF,s = lambda_s d_s and lambda_MPF,latent,s = lambda_s l_s. Then

    * SPFM = 1 - sum lambda_SPF+RF / sum lambda;
    * LFM = 1 - sum lambda_MPF,latent / sum (lambda - lambda_SPF - lambda_RF);
    * PMHF = sum lambda_SPF+RF + sum lambda_MPF,latent x sum lambda x T_lifetime (FIT; the product term is
      converted from per-hour rates, x 1e-9 / FIT). This is the simplified form ISO 26262-10 gives for a
      mission function and a safety mechanism without repair, lambda_SPF + lambda_RF + lambda_IF x
      lambda_SM,latent x T_lifetime, with two conservative choices: the second fault's rate lambda_IF is the
      whole raw rate sum lambda (every fault, not only those the defeated mechanism covered), and the factor
      1/2 some derivations carry (the average of a dual-point probability over the lifetime) is dropped.
      Multiple-point *detected* faults do not contribute (the mechanism reports them: repaired or safe state).

    Bounds (lower for SPFM and LFM, upper for PMHF) follow from upper bounds D+ on sum lambda_SPF+RF and L+ on
    sum lambda_MPF,latent holding together: SPFM >= 1 - D+ / Lambda, LFM >= 1 - L+ / (Lambda - D+) (the ratio
    grows with both), PMHF <= D+ + L+ x Lambda x T x 1e-9. Hence all three, and the ASIL read from them, hold
    together at ``confidence``. D+ and L+ by ``method``:

    * ``"bonferroni"`` (default, valid for any allocation): Clopper-Pearson upper bounds on each injected
      stratum's dangerous and latent fractions at 1 - alpha / J, J = 2 x injected strata (union bound);
      a stratum without injection counts fully dangerous and fully latent;
    * ``"pooled"``: one bound on the pooled dangerous count and one on the latent count at 1 - alpha / 2,
      plus the FIT the allocation left short of proportional (see :func:`_pooled`). Tighter when the
      injections are proportional to lambda (one FIT per bit and :func:`fault_injection.sampling.plan_faults`:
      a self-weighting sample); with FIT per bit differing between flip-flops and SRAM the plan is not
      proportional and the shortfall makes it loose (use Bonferroni, or allocate by lambda).

    Sampling is without replacement from a finite fault space, for which the binomial bounds are
    conservative. The ASIL: the highest level whose three targets the bounds meet (:func:`supported_asil`;
    A when no B target is met: ISO 26262-5 sets none for A). The binding metric is the one using most of its
    allowance at the next level (at D, at D itself): the dangerous share over 1 - SPFM target, the latent share
    over 1 - LFM target, PMHF over its limit; the limiting structure has the largest share of that metric's
    bound (of D+ for SPFM, of L+ for LFM, of the PMHF bound for PMHF).
    """
    _check_confidence(confidence)
    try:
        method = BoundMethod(method)
    except ValueError:
        raise StatsError(f"method must be one of {', '.join(m.value for m in BoundMethod)}, got {method!r:.60}") \
            from None
    if not isinstance(watchdog, bool):
        raise StatsError(f"watchdog must be True or False, got {watchdog!r:.60}")
    if not _positive_finite(lifetime_hours):
        raise StatsError(f"lifetime_hours must be a positive finite number of hours, got {lifetime_hours!r:.60}")
    if fit is None:
        fit = FitRates()
    elif not isinstance(fit, FitRates):
        fit = FitRates.uniform(fit)
    if not isinstance(bits, Mapping) or not isinstance(counts, Mapping):
        raise StatsError("bits and counts must be mappings keyed by structure or (structure, kind)")
    strata = _strata(bits, counts, fit, watchdog)
    alpha = 1.0 - confidence
    total = sum(s.raw_fit for s in strata)
    n_bounds = _bonferroni(strata, alpha) if method is BoundMethod.BONFERRONI else _pooled(strata, alpha, total)
    dual = total * float(lifetime_hours) * 1e-9  # FIT of dual-point failures per FIT of latent faults

    d_point = sum(s.raw_fit * s.fraction(FaultClass.SPF_RF) for s in strata)
    l_point = sum(s.raw_fit * s.fraction(FaultClass.MPF_LATENT) for s in strata)
    d_up = min(total, sum(s.d_up for s in strata))
    l_up = min(total, sum(s.l_up for s in strata))
    spfm_point = 1.0 - d_point / total
    lfm_point = 1.0 - l_point / (total - d_point) if total - d_point > 0 else 1.0
    spfm_lo = max(0.0, 1.0 - d_up / total)
    lfm_lo = max(0.0, 1.0 - l_up / (total - d_up)) if total - d_up > 0 else 0.0
    pmhf_point = d_point + l_point * dual
    pmhf_up = d_up + l_up * dual

    by_metric = {Metric.SPFM: Asil(asil_for_spfm(spfm_lo) or "A"), Metric.LFM: Asil(asil_for_lfm(lfm_lo) or "A"),
                 Metric.PMHF: Asil(asil_for_pmhf(pmhf_up) or "A")}
    asil = supported_asil(spfm_lo, lfm_lo, pmhf_up)
    level = "D" if asil is Asil.D else _ASIL_ORDER[_ASIL_ORDER.index(asil) + 1].value
    use = {m: _excess(m, level, spfm_lo, lfm_lo, pmhf_up) for m in Metric}
    binding = max(Metric, key=lambda m: use[m])
    per_stratum, per_structure = _aggregate(strata, dual)
    share_of = {Metric.SPFM: lambda r: r.dangerous_fit_upper, Metric.LFM: lambda r: r.latent_fit_upper,
                Metric.PMHF: lambda r: r.pmhf_fit_upper}[binding]
    whole = sum(share_of(r) for r in per_structure)
    limiting = max(per_structure, key=share_of) if whole > 0 else None

    notes: list[str] = []
    if any(not s.n for s in strata):
        notes.append("strata without injections (" + ", ".join(f"{s.structure} {'/'.join(s.kinds) or 'bits'}"
                                                               for s in strata if not s.n)
                     + ") bound as fully dangerous and fully latent")
    if total - d_point <= 0:
        notes.append("every injected fault is dangerous: LFM has no non-dangerous faults to measure (reported "
                     "as 100%, its bound as 0)")
    if method is BoundMethod.POOLED:
        short = sum(max(0.0, s.raw_fit - s.n * total / max(1, sum(t.n for t in strata))) for s in strata)
        if short > 1e-3 * total:
            notes.append(f"pooled: the allocation is not proportional to FIT; {100 * short / total:.2f}% of the "
                         f"FIT counted fully dangerous and latent for it (the Bonferroni method has no such term)")
    reason = _reason(asil, level, binding, use, by_metric, limiting, share_of, whole,
                     spfm_lo=spfm_lo, lfm_lo=lfm_lo, pmhf_up=pmhf_up)
    return HardwareMetrics(
        confidence=confidence, method=method, watchdog=watchdog, fit=fit, lifetime_hours=float(lifetime_hours),
        total_fit=total, dangerous_fit=d_point, dangerous_fit_upper=d_up, latent_fit=l_point,
        latent_fit_upper=l_up, spfm=spfm_point, spfm_lower=spfm_lo, lfm=lfm_point, lfm_lower=lfm_lo,
        pmhf_fit=pmhf_point, pmhf_fit_upper=pmhf_up, asil=asil,
        asil_point=supported_asil(spfm_point, lfm_point, pmhf_point), asil_by_metric=by_metric, binding=binding,
        limiting_structure=limiting.structure if limiting else None, reason=reason, bounds=n_bounds,
        structures=per_structure, strata=per_stratum, notes=notes)


def _reason(asil: Asil, level: str, binding: Metric, use: dict[Metric, float], by_metric: dict[Metric, Asil],
            limiting: StructureMetrics | None, share_of, whole: float, *, spfm_lo: float, lfm_lo: float,
            pmhf_up: float) -> str:
    """One sentence: the binding metric against its target at ``level``, and the limiting structure's share."""
    shown = {Metric.SPFM: f"SPFM >= {100 * spfm_lo:.2f}%", Metric.LFM: f"LFM >= {100 * lfm_lo:.2f}%",
             Metric.PMHF: f"PMHF <= {pmhf_up:.4g} FIT"}
    target = {Metric.SPFM: f"{100 * ASIL_SPFM[level]:g}%", Metric.LFM: f"{100 * ASIL_LFM[level]:g}%",
              Metric.PMHF: f"< {ASIL_PMHF_FIT[level]:g} FIT"}
    if asil is Asil.D:
        head = (f"ASIL D: every metric meets D; nearest its limit is {shown[binding]} against "
                f"{target[binding]} ({100 * use[binding]:.0f}% of the allowance)")
    else:
        others = [str(m) for m in Metric if m is not binding and use[m] <= 1.0]
        head = (f"ASIL {asil}: {shown[binding]} misses ASIL {level}'s {target[binding]} "
                f"({use[binding]:.2f}x the allowance)"
                + (f"; {' and '.join(others)} {'meets' if len(others) == 1 else 'meet'} {level}" if others else ""))
        if asil is Asil.A:
            head += " (ISO 26262-5 sets no hardware-metric target for ASIL A)"
    if limiting is None:
        return head
    what = {Metric.SPFM: "single-point/residual FIT bound", Metric.LFM: "latent-fault FIT bound",
            Metric.PMHF: "PMHF bound"}[binding]
    return (f"{head}; {limiting.structure} holds {100 * share_of(limiting) / whole:.0f}% of the {what} "
            f"({share_of(limiting):.4g} of {whole:.4g} FIT)")
