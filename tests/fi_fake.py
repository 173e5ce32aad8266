"""A deterministic stand-in injector for the campaign tests (no simulator).

The outcome of a fault is a fixed function of the fault (a hash of its fields),
with structure-dependent odds, so two runs of one plan give the same results
whatever the batching, the worker count or the interruptions. ``FI_FAKE_DELAY``
(seconds per injection, environment) makes it slow for the SIGKILL test.
"""

from __future__ import annotations

import hashlib
import os
import time
from types import SimpleNamespace

from fault_injection.faults import InjectionResult
from mappings.random_programs import program_cycles

# probability (in 1/1000) of sdc and of due per structure; the rest is masked
_ODDS = {"pe_accumulators": (300, 20), "acc_buf": (400, 0), "controller": (150, 300), "instruction_reg": (200, 400)}


def outcome_of(fault) -> str:
    h = int.from_bytes(hashlib.sha256(repr(sorted(fault.to_dict().items())).encode()).digest()[:4], "little") % 1000
    sdc, due = _ODDS.get(fault.structure, (100, 10))
    return "sdc" if h < sdc else "due" if h < sdc + due else "masked"


class FakeInjector:
    def __init__(self, cfg, program):
        self.cycles = program_cycles(cfg, program)
        self.delay = float(os.environ.get("FI_FAKE_DELAY", "0") or 0)

    def golden(self):
        return SimpleNamespace(cycles=self.cycles)

    def inject(self, faults):
        out = []
        for f in faults:
            if self.delay:
                time.sleep(self.delay)
            o = outcome_of(f)
            out.append(InjectionResult(o, self.cycles if o != "due" else 2 * self.cycles, o == "masked", "fake"))
        return out


def make(cfg, program):
    return FakeInjector(cfg, program)


class PartialInjector(FakeInjector):
    """Covers the datapath only (like a model injector without the controller)."""

    def covers(self, site):
        return site.structure not in ("controller", "instruction_reg", "load_unit", "store_unit")


def make_partial(cfg, program):
    return PartialInjector(cfg, program)
