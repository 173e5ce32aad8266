"""Statistics of fault-injection campaigns (pure Python: no scipy).

* :func:`leveugle_sample_size`: injections needed to estimate a proportion over a
  finite fault space with a given margin and confidence (Leveugle et al., DATE 2009).
* :func:`clopper_pearson`, :func:`upper_bound`, :func:`lower_bound`: exact binomial
  confidence intervals, from a regularized incomplete beta function computed by
  its continued fraction and inverted by bisection (|error| < 1e-12).
* :func:`spfm`: FIT per structure, total FIT, the single-point fault metric with a
  one-sided confidence bound, and the highest ASIL that bound supports.

ISO 26262-5 targets used here: SPFM >= 90 % (ASIL B), >= 97 % (C), >= 99 % (D).
The latent-fault metric is not computed (it needs the multiple-point fault
analysis of the safety mechanisms, which the campaign does not perform).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import NormalDist

from hwgen.errors import HwgenError

__all__ = ["StatsError", "normal_quantile", "leveugle_sample_size", "betainc", "beta_quantile", "clopper_pearson",
           "upper_bound", "lower_bound", "StructureFit", "SpfmResult", "spfm", "asil_for_spfm",
           "ASIL_SPFM", "ASIL_LFM", "ASIL_PMHF_FIT"]

#: ISO 26262-5 single-point fault metric targets, lowest ASIL first
ASIL_SPFM: dict[str, float] = {"B": 0.90, "C": 0.97, "D": 0.99}
#: latent fault metric targets (stated for reports; not computed here)
ASIL_LFM: dict[str, float] = {"B": 0.60, "C": 0.80, "D": 0.90}
#: probabilistic metric for random hardware failures, FIT (upper limits)
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
    notes: list[str] = ["latent-fault metric (LFM) not computed"]
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
