"""Solving a pulp problem exactly with the CBC solver pulp bundles: the one place the project calls it.

Every ILP here (the memory split, mixed precision, protection) must be solved to optimality, not to a gap,
because each is checked against brute force: ``gapRel=0, gapAbs=0``. pulp 3.3 deprecates the bundled
``PULP_CBC_CMD`` in favour of 4.0's interface; the warning is silenced here once, not at every call.
"""

from __future__ import annotations

import warnings

__all__ = ["solve_exact"]


def solve_exact(prob, time_limit: float | None = None) -> str:
    """Solve ``prob`` (a ``pulp.LpProblem``) in place to optimality (within ``time_limit`` seconds, if
    given); returns pulp's status string ("Optimal", "Infeasible", "Not Solved"...). pulp is imported here,
    not with the module, as by its callers: only a solve pays for it."""
    import pulp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        prob.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, gapRel=0, gapAbs=0))
    return pulp.LpStatus[prob.status]
