"""The fault-site inventory: every piece of state of one accelerator configuration.

Two derivations that must agree (contract 4, fault-site parity; tests/test_fi_sites.py):

* :func:`rtl_sites` elaborates :class:`hwgen.top.Accelerator` with Amaranth and
  lists every signal some fragment drives in the ``sync`` domain (the
  flip-flops, including the controller FSM's state register, which Amaranth
  names ``<fsm name>_state``: ``ctrl.fsm_state``), every memory, and the
  data register of every synchronous memory read port. Names are dotted paths
  in the elaboration hierarchy: ``ctrl.pc``, ``load.ld_word``, ``array.skew_a_r1_0``,
  ``array.pe_r0_c1.acc``, ``qtable_c0``, ``a_spad``, ``a_spad.rd_data``.
* :func:`model_sites` computes the same list from the configuration alone
  (pure Python, no Amaranth import): the register table
  :data:`hwgen.hw_facts.REGISTERS` (unit-prefixed names, widths), the array's
  registers by formula and the memories, so the cycle model and the campaign
  planner never need to elaborate the hardware.

Memory read ports: ``read_port()`` in Amaranth 0.5 is synchronous and not
transparent, so each memory has a read-data register (R x input_width bits for
a_spad, C x weight_width for w_spad, C x acc_width for acc_buf) that is real
state although no ``Signal`` of the design is assigned in ``sync`` for it (the
Verilog backend emits it as an anonymous ``reg _N_``). It is listed as the site
``<memory>.rd_data`` (kind ``ff``, structure of its memory); pass
``read_ports=False`` to leave these three registers out of both inventories.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from hwgen.config import AcceleratorConfig, Controller
from hwgen.hw_facts import REGISTERS, abft, memory_layouts, twinned_units
from hwgen.safety import TWIN_SUFFIX, checksum_weight_bits

from .faults import STRUCTURES, Site

__all__ = ["rtl_sites", "design_sites", "model_sites", "inventory", "inventory_rows", "inventory_table",
           "total_bits", "MEMORIES", "FSM_STATE_SITE", "READ_PORT_SUFFIX", "read_port_suffix", "RtlStateError"]

#: the memories of the accelerator (site names)
MEMORIES = ("a_spad", "w_spad", "acc_buf")
#: the controller FSM's state register (Amaranth names it after the FSM: ``fsm`` + ``_state``, in ``ctrl``)
FSM_STATE_SITE = next(r.site(r.name) for r in REGISTERS if r.kind == "fsm")
#: suffix of the read-data register of a memory's synchronous read port
READ_PORT_SUFFIX = ".rd_data"


def read_port_suffix(k: int) -> str:
    """The site suffix of a memory's k-th read port's data register: ``.rd_data``, then ``.rd_data1``...
    (the decoupled design's accumulator buffer has two: the compute unit's and the store unit's)."""
    return READ_PORT_SUFFIX + (str(k) if k else "")


class RtlStateError(RuntimeError):
    """The elaborated design holds state that cannot be named as a fault site."""


# ----------------------------------------------------------------------------- model (formula)
def model_sites(cfg: AcceleratorConfig, *, read_ports: bool = True) -> list[Site]:
    """The fault sites of ``cfg`` by formula (no Amaranth), sorted by name: the register table
    (:data:`hwgen.hw_facts.REGISTERS`), the systolic array's registers and the memories."""
    R, C = cfg.rows, cfg.cols
    iw, ww, accw = cfg.input_width, cfg.weight_width, cfg.acc_width

    regs: dict[str, int] = {}
    twins = twinned_units(cfg)  # a lockstep twin holds a copy of its unit's registers (hwgen.lockstep)
    for reg in REGISTERS:
        for name in reg.names(cfg):
            regs[reg.site(name)] = reg.width(cfg)
            if reg.unit in twins:
                regs[f"{reg.unit}{TWIN_SUFFIX}.{name}"] = reg.width(cfg)
    # the systolic array
    for i in range(R):
        for k in range(i):
            regs[f"array.skew_a_r{i}_{k}"] = iw
            if cfg.shadow_weights:
                regs[f"array.skew_t_r{i}_{k}"] = 1
    for j in range(C):
        if cfg.supports_os:
            for k in range(j):
                regs[f"array.skew_b_c{j}_{k}"] = ww
        if cfg.supports_ws:
            for k in range(C - 1 - j):
                regs[f"array.deskew_c{j}_{k}"] = accw
    # the ABFT checksum column (hwgen.array): column C, weights wider by log2 C, column C-1's skew
    checksum = abft(cfg)
    cbw = checksum_weight_bits(ww, C)
    if checksum and cfg.supports_os:
        for k in range(C - 1):
            regs[f"array.skew_b_c{C}_{k}"] = cbw
    for i in range(R):
        for j in range(C + checksum):
            bw = cbw if j == C else ww
            pe = f"array.pe_r{i}_c{j}"
            regs[f"{pe}.a_reg"] = iw
            regs[f"{pe}.b_reg"] = bw
            regs[f"{pe}.acc"] = accw
            if cfg.shadow_weights:
                regs[f"{pe}.w_shadow"] = bw
                regs[f"{pe}.a_tag"] = 1

    sites = [Site(name, width) for name, width in regs.items()]
    layouts = memory_layouts(cfg)  # a protected memory's words carry its check bits (hwgen.safety)
    mems = (("a_spad", layouts["a_spad"].word_bits, cfg.a_spad_depth),
            ("w_spad", layouts["w_spad"].word_bits, cfg.w_spad_depth),
            ("acc_buf", layouts["acc_buf"].word_bits, cfg.acc_depth))
    for name, width, depth in mems:
        sites.append(Site(name, width, depth, "mem"))
        if read_ports:
            sites.append(Site(name + READ_PORT_SUFFIX, width))
            if name == "acc_buf" and cfg.controller is Controller.DECOUPLED:
                sites.append(Site(name + read_port_suffix(1), width))  # the store unit's own read port
    return sorted(sites, key=lambda s: s.name)


# ----------------------------------------------------------------------------- RTL (elaborated)
def rtl_sites(cfg: AcceleratorConfig, *, read_ports: bool = True) -> list[Site]:
    """The fault sites of the elaborated Amaranth design ``hwgen.top.Accelerator(cfg)``, sorted by name.
    See :func:`design_sites`."""
    from hwgen.top import Accelerator

    return design_sites(Accelerator(cfg), read_ports=read_ports)


def design_sites(design, *, read_ports: bool = True) -> list[Site]:
    """The state of any Amaranth 0.5 elaboratable, as fault sites sorted by name.

    Walks the fragment hierarchy of ``Fragment.get(design, None)``: a signal on
    the left-hand side of a ``sync`` statement of a fragment is a register of
    that fragment (dotted path of submodule names; an FSM's state register is a
    ``sync`` signal like any other); a ``MemoryInstance`` is a memory site (word
    width, depth) plus, per synchronous read port, its read-data register.
    Raises :class:`RtlStateError` for state that cannot be named: a register
    Amaranth named itself (``$...``), two registers of one fragment with the
    same name, an unnamed submodule, a clock domain other than ``sync``, an
    asynchronous or transparent read port (state this inventory does not model).
    """
    from amaranth.hdl import Fragment, Shape
    from amaranth.hdl._mem import MemoryInstance  # Amaranth 0.5: the fragment a Memory elaborates to

    top = Fragment.get(design, None)
    sites: dict[str, Site] = {}
    problems: list[str] = []

    def add(site: Site) -> None:
        if site.name in sites:
            problems.append(f"two state elements named {site.name!r}")
        sites[site.name] = site

    def walk(frag, path: tuple[str, ...]) -> None:
        prefix = "".join(p + "." for p in path)
        where = ".".join(path) or "top"
        if isinstance(frag, MemoryInstance):
            name = ".".join(path)
            add(Site(name, Shape.cast(frag._data.shape).width, frag._data.depth, "mem"))
            for k, port in enumerate(frag._read_ports):
                if port._domain == "comb":
                    problems.append(f"{name}: asynchronous read port (no read register)")
                    continue
                if port._domain != "sync":
                    problems.append(f"{name}: read port in clock domain {port._domain!r}")
                if port._transparent_for:
                    problems.append(f"{name}: transparent read port (address register not modelled)")
                if read_ports:
                    add(Site(name + read_port_suffix(k), len(port._data)))
            for port in frag._write_ports:
                if port._domain != "sync":
                    problems.append(f"{name}: write port in clock domain {port._domain!r}")
        for domain, stmts in frag.statements.items():
            if domain == "comb":
                continue
            if domain != "sync":
                problems.append(f"{where}: statements in clock domain {domain!r}")
            seen: dict[str, object] = {}
            for stmt in stmts:
                for sig in stmt._lhs_signals():
                    if not sig.name or sig.name.startswith("$"):
                        problems.append(f"{where}: register with an automatic name {sig.name!r} "
                                        f"({len(sig)} bits, {sig.src_loc[0]}:{sig.src_loc[1]})")
                        continue
                    if seen.setdefault(sig.name, sig) is not sig:
                        problems.append(f"{where}: two registers named {sig.name!r}")
                        continue
                    if prefix + sig.name not in sites:
                        add(Site(prefix + sig.name, len(sig)))
        for sub, subname, _loc in frag.subfragments:
            if subname is None:
                problems.append(f"{where}: unnamed submodule {type(sub).__name__}")
                subname = f"${type(sub).__name__}"
            walk(sub, path + (subname,))

    walk(top, ())
    if problems:
        raise RtlStateError("RTL state that cannot be named as fault sites:\n  " + "\n  ".join(problems))
    return sorted(sites.values(), key=lambda s: s.name)


# ----------------------------------------------------------------------------- summaries
def total_bits(sites: Iterable[Site]) -> int:
    return sum(s.bits for s in sites)


def inventory(cfg: AcceleratorConfig | None = None, sites: Sequence[Site] | None = None,
              *, read_ports: bool = True) -> dict[str, dict[str, int]]:
    """structure -> {"sites": count, "bits": total bits}, in report order (STRUCTURES),
    structures with no site left out. From ``sites`` when given, else ``model_sites(cfg)``."""
    if sites is None:
        if cfg is None:
            raise TypeError("inventory() needs a configuration or a list of sites")
        sites = model_sites(cfg, read_ports=read_ports)
    out: dict[str, dict[str, int]] = {s: {"sites": 0, "bits": 0} for s in STRUCTURES}
    for site in sites:
        entry = out.setdefault(site.structure, {"sites": 0, "bits": 0})
        entry["sites"] += 1
        entry["bits"] += site.bits
    return {k: v for k, v in out.items() if v["sites"]}


def inventory_rows(cfg: AcceleratorConfig | None = None, sites: Sequence[Site] | None = None,
                   *, read_ports: bool = True, total: bool = True) -> list[tuple[str, str, str, str, str]]:
    """Rows (structure, description, sites, bits, share of bits) as strings, for ``hwgen fi sites``;
    a final "total" row when ``total``."""
    inv = inventory(cfg, sites, read_ports=read_ports)
    all_bits = sum(v["bits"] for v in inv.values()) or 1
    rows = [(name, STRUCTURES.get(name, ""), f"{v['sites']:,}", f"{v['bits']:,}",
             f"{100.0 * v['bits'] / all_bits:.2f}%") for name, v in inv.items()]
    if total:
        rows.append(("total", "", f"{sum(v['sites'] for v in inv.values()):,}",
                     f"{sum(v['bits'] for v in inv.values()):,}", "100.00%"))
    return rows


def inventory_table(cfg: AcceleratorConfig | None = None, sites: Sequence[Site] | None = None,
                    *, read_ports: bool = True, title: str | None = None):
    """A rich Table of :func:`inventory_rows` (rich is imported here, not at module load)."""
    from rich.table import Table

    if title is None and cfg is not None:
        title = (f"fault sites of '{cfg.name}' ({cfg.rows}x{cfg.cols} {cfg.dataflow}, "
                 f"port {cfg.host_port_width} bits)")
    table = Table(title=title)
    table.add_column("structure")
    table.add_column("description")
    for col in ("sites", "bits", "share of bits"):
        table.add_column(col, justify="right")
    rows = inventory_rows(cfg, sites, read_ports=read_ports)
    for i, row in enumerate(rows):
        table.add_row(*row, end_section=(i == len(rows) - 2))
    return table

