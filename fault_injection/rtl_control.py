"""The design's control state: the registers that the outcome-deciding outputs depend on, over time.

Why: a faulty run that has already written a wrong final output byte is an SDC *unless* something
later turns it into a DUE (error, hang, out-of-range access) or rewrites the byte. All of those are
decided by the outputs in :data:`OUTCOME_OUTPUTS` (addresses, enables, strobes, done, error). If the
faulty run's control state (the transitive fan-in of those outputs through every register, found
here) equals the golden run's at some cycle, and the inputs control reads are the golden ones, then
its control future is the golden one: no error, halt at the golden cycle, the same stores. The RTL
injector then stops the run as an SDC (``cpp/inject_shortcuts.cpp``, early stop only). Data state (the
array, the scratchpads, the accumulators...) may differ freely: it reaches those outputs only through
``st_wdata``, which is not one of them.

The fan-in is computed by yosys on the same Verilog the harness simulates (``%ci*``: the input cone
through cells, flip-flops and memories included), and its flip-flops are mapped back to the injector's
state elements; if any cannot be mapped, there is no split and the shortcut stays off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

__all__ = ["OUTCOME_OUTPUTS", "outcome_outputs", "ControlSplit", "control_split"]

#: Top-level outputs the outcome of a run depends on besides the data written (``st_wdata``): what the
#: harness reads to decide error, hang, out-of-range access and which bytes are written. A safety
#: mechanism's status outputs (detected/corrected) belong here too, so that this split keeps them
#: in the control state and an early SDC stop can never hide them.
OUTCOME_OUTPUTS = ("fetch_addr", "fetch_re", "ld_addr", "ld_re", "st_addr", "st_we", "st_wstrb", "done", "error")


def outcome_outputs(cfg) -> tuple[str, ...]:
    """:data:`OUTCOME_OUTPUTS` of ``cfg``'s design: with safety mechanisms, their status counters too
    (:data:`hwgen.safety.STATUS_COUNTERS`), which decide corrected and detected."""
    from hwgen.hw_facts import has_mechanisms
    from hwgen.safety import STATUS_COUNTERS

    return OUTCOME_OUTPUTS + (STATUS_COUNTERS if has_mechanisms(cfg) else ())


@dataclass(frozen=True)
class ControlSplit:
    """State var indices in the control cone, and the top inputs the cone reads (e.g. ``ld_rdata``)."""

    vars: tuple[int, ...]
    inputs: tuple[str, ...]

    def to_json(self) -> dict:
        return {"vars": list(self.vars), "inputs": list(self.inputs)}

    @classmethod
    def from_json(cls, d: dict | None) -> "ControlSplit | None":
        return None if d is None else cls(tuple(int(i) for i in d["vars"]), tuple(str(s) for s in d["inputs"]))


_SCRIPT = """read_verilog design.v
hierarchy -top {top}
proc
memory_collect
flatten
opt_clean
select -set ctrl {outputs} %ci*
select -set ff @ctrl t:$*dff* t:$*dlatch* %u %i
tee -q -o q.txt select -list @ff %co:+[Q] w:* %i
tee -q -o mem.txt select -list @ctrl t:$mem_v2 t:$mem %u %i
tee -q -o in.txt select -list @ctrl i:* %i
"""


def control_split(vtext: str, top: str, names: Sequence[Sequence[str]],
                  outputs: Sequence[str] = OUTCOME_OUTPUTS) -> ControlSplit | None:
    """The control split of ``vtext`` (top module ``top``); ``names[i]``: every Verilog path of state var
    i (its path and aliases). None if yosys fails or a register of the cone names no state var."""
    from hwgen.yowasp_run import YOSYS, run_tool

    script = _SCRIPT.format(top=top, outputs=" ".join(f"o:{o}" for o in outputs))
    run = run_tool(YOSYS, ["-q", "script.ys"], {"design.v": vtext, "script.ys": script},
                   ["q.txt", "mem.txt", "in.txt"])
    if run.returncode != 0 or len(run.outputs) != 3:
        return None
    index = {n: i for i, ns in enumerate(names) for n in ns}

    def local(line: str) -> str:
        obj = line.strip().split("/", 1)[1]                 # "<module>/<object>"
        return obj.replace("$flatten\\", "").replace("\\", "")

    found: set[int] = set()
    for text in (run.outputs["q.txt"], run.outputs["mem.txt"]):
        for line in filter(None, (ln.strip() for ln in text.splitlines())):
            name = local(line)
            if name not in index:
                return None
            found.add(index[name])
    inputs = tuple(sorted(local(ln) for ln in run.outputs["in.txt"].splitlines() if ln.strip()))
    return ControlSplit(tuple(sorted(found)), inputs)
