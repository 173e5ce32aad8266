"""Bounds for "refused before anything is allocated" and "does not hang", without asserting on wall time.

Speed is measured by benchmarks/, never asserted by tests. What the hostile-input tests need instead:
:func:`peak_allocation` shows that a refusal came before the allocation a declared size implies (Python
and numpy allocations are traced), and :func:`no_hang` fails a test that would otherwise wait forever
(a generous guard, not a speed goal).
"""

import contextlib
import signal
import tracemalloc
from typing import Callable, Iterator, TypeVar

__all__ = ["peak_allocation", "no_hang", "LITTLE"]

T = TypeVar("T")

#: What a refusal may allocate: far below the gigabytes the refused inputs declare.
LITTLE = 64 << 20


def peak_allocation(fn: Callable[[], T]) -> tuple[T | BaseException, int]:
    """Run ``fn``; return (its result or the exception it raised, peak traced bytes while it ran)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        out: T | BaseException = fn()
    except BaseException as e:  # noqa: BLE001 - the caller checks what was raised
        out = e
    peak = tracemalloc.get_traced_memory()[1] - base
    if started:
        tracemalloc.stop()
    return out, peak


@contextlib.contextmanager
def no_hang(seconds: int = 120) -> Iterator[None]:
    """Fail (TimeoutError) if the block has not finished after ``seconds``: a guard against a hang."""

    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
