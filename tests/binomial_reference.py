"""An independent Clopper-Pearson reference for the tests (not the code under test): binomial sums in log
space, inverted by bisection. fault_injection.stats computes the same bounds through its own incomplete beta
function; tests/test_fi_iso26262.py and tests/test_protection_ilp.py check it, and what is built on it,
against these."""

import functools
import math


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed term by term in log space."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
             for i in range(k + 1)]
    top = max(terms)
    return math.exp(top) * sum(math.exp(t - top) for t in terms)


@functools.lru_cache(maxsize=None)
def cp_upper(k: int, n: int, conf: float) -> float:
    """The one-sided upper bound u: P(X <= k; n, u) = 1 - conf (the cdf falls with p), by bisection (1 when
    k = n)."""
    if k == n:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if binom_cdf(k, n, mid) > 1.0 - conf:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def cp_lower(k: int, n: int, conf: float) -> float:
    """The one-sided lower bound: the p with P(X >= k; n, p) = 1 - conf, by bisection (0 when k = 0)."""
    if k == 0:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 1.0 - binom_cdf(k - 1, n, mid) < 1.0 - conf:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
