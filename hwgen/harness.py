"""The simulation harness: the accelerator plus its host memory, as one Verilog top.

Why: per-cycle Python driving through cocotb is slow (about 17k cycles/s on
these machines against 460k for plain Verilator). With the host memory inside
the design, the testbench only writes the program image into the memory array,
pulses ``start`` and waits for ``done``; the simulator runs the rest without
calling back into Python.

The host memory holds ``mem_bytes // host_port_bytes`` words of
``host_port_width`` bits, with two synchronous read ports (the accelerator's
fetch and load ports: data for the address presented at cycle t appears at
t+1, as the accelerator's host-port contract says; a read and a write of the
same word in one cycle return the old data) and a byte-granular write port
(the store port). It comes in two interchangeable forms:

* ``verilog_memory=False``: an ``amaranth.lib.memory.Memory``, so the whole
  harness runs under ``amaranth.sim``;
* ``verilog_memory=True`` (what :func:`harness_verilog` uses): an
  ``Instance`` of the small hand-written module :data:`MEM_MODULE`
  (:data:`MEM_MODULE_VERILOG`, appended to the generated text). Why: Amaranth
  writes every word's initial value into the Verilog, so generating a 512 KiB
  harness took 10 s (2.5 MB of ``initial`` lines that Verilator then compiles),
  and that cost recurs on each cache lookup; the hand-written memory has no
  initial block and its size is a parameter.

In the Verilog the memory is the unpacked array ``mem`` (``reg [W-1:0] mem
[0:D-1]``) in instance :data:`MEM_INSTANCE` of the top :data:`TOP_NAME`
(``dut.hostmem.mem[i]`` in cocotb). :func:`vlt_text` makes it and the top's
ports visible to VPI and nothing else, so Verilator still optimises the rest.

Accesses outside the memory raise the sticky ``mem_oob`` output, cleared by
reset; such writes are dropped (reads return the word the address wraps to).

No ``from __future__ import annotations`` here: ``wiring.Component`` reads
its signature from real annotations.
"""

from typing import Callable

from amaranth.back import verilog
from amaranth.hdl import ClockSignal, Instance, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .config import AcceleratorConfig

__all__ = ["Harness", "AccelFactory", "default_accelerator", "harness_verilog", "vlt_text",
           "TOP_NAME", "MEM_MODULE", "MEM_INSTANCE", "MEM_VAR", "MEM_RDATA", "TOP_PUBLIC", "MEM_MODULE_VERILOG",
           "check_mem_bytes"]

#: Name of the top Verilog module (and of the cocotb toplevel).
TOP_NAME = "hwgen_harness"
#: The hand-written host-memory module, its instance name in the top, and its array.
MEM_MODULE = "hwgen_hostmem"
MEM_INSTANCE = "hostmem"
MEM_VAR = "mem"
#: The memory module's read-data registers: the fetch port's and the load port's.
MEM_RDATA = ("f_rdata", "l_rdata")
#: Top-level ports the testbench reads or writes (granted by :func:`vlt_text`).
TOP_PUBLIC = ("clk", "rst", "start", "done", "error", "cycles", "busy_pe", "mem_oob")

MEM_MODULE_VERILOG = f"""
// Host memory of the hwgen simulation harness (see hwgen/harness.py): no
// initial block, the size is a parameter. Two synchronous read ports (fetch and
// load; old data on a same-cycle write) and one byte-enabled write port (store).
module {MEM_MODULE} #(
  parameter WIDTH = 64,
  parameter DEPTH = 2048,
  parameter ABITS = 11
) (
  input  wire                 clk,
  input  wire                 f_re,
  input  wire [ABITS-1:0]     f_addr,
  output reg  [WIDTH-1:0]     {MEM_RDATA[0]},
  input  wire                 l_re,
  input  wire [ABITS-1:0]     l_addr,
  output reg  [WIDTH-1:0]     {MEM_RDATA[1]},
  input  wire [ABITS-1:0]     waddr,
  input  wire [WIDTH/8-1:0]   wen,
  input  wire [WIDTH-1:0]     wdata
);
  reg [WIDTH-1:0] {MEM_VAR} [0:DEPTH-1];
  integer i;
  always @(posedge clk) begin
    if (f_re)
      {MEM_RDATA[0]} <= {MEM_VAR}[f_addr];
    if (l_re)
      {MEM_RDATA[1]} <= {MEM_VAR}[l_addr];
    for (i = 0; i < WIDTH/8; i = i + 1)
      if (wen[i])
        {MEM_VAR}[waddr][8*i +: 8] <= wdata[8*i +: 8];
  end
endmodule
"""

AccelFactory = Callable[[AcceleratorConfig], wiring.Component]


def default_accelerator(cfg: AcceleratorConfig) -> wiring.Component:
    """``hwgen.top.Accelerator(cfg)``: imported late so the harness loads without it (stub tests)."""
    from .top import Accelerator

    return Accelerator(cfg)


def check_mem_bytes(cfg: AcceleratorConfig, mem_bytes: int) -> None:
    """Raise ValueError unless ``mem_bytes`` is a power of two of at least one host-port word."""
    if mem_bytes < cfg.host_port_bytes or mem_bytes & (mem_bytes - 1):
        raise ValueError(f"mem_bytes={mem_bytes}: must be a power of two of at least "
                         f"{cfg.host_port_bytes} bytes (one host-port word)")
    if mem_bytes > 1 << 32:
        raise ValueError(f"mem_bytes={mem_bytes}: the host port addresses at most 4 GiB")


class Harness(wiring.Component):
    """Accelerator + host memory. Ports: start, done, error, cycles, busy_pe, mem_oob.

    ``accel`` is an already constructed accelerator component with the
    ``hwgen.top.Accelerator`` host-port signature (default: built from ``cfg``).
    ``verilog_memory`` selects the memory form (see the module docstring).
    """

    start: In(1)
    done: Out(1)
    error: Out(1)
    cycles: Out(48)
    busy_pe: Out(48)
    mem_oob: Out(1)

    def __init__(self, cfg: AcceleratorConfig, mem_bytes: int, accel: wiring.Component | None = None,
                 verilog_memory: bool = False):
        check_mem_bytes(cfg, mem_bytes)
        self.cfg = cfg
        self.verilog_memory = verilog_memory
        self.mem_bytes = mem_bytes
        self.depth = mem_bytes // cfg.host_port_bytes
        self.accel = accel if accel is not None else default_accelerator(cfg)
        #: The Amaranth memory (``verilog_memory=False`` only): amaranth.sim testbenches preload and
        #: inspect it through ``ctx.set(harness.memory.data[i], word)`` / ``ctx.get(...)``.
        self.memory = None if verilog_memory else memory.Memory(
            shape=cfg.host_port_width, depth=self.depth, init=[])
        super().__init__()

    def elaborate(self, platform) -> Module:
        m = Module()
        cfg = self.cfg
        m.submodules.accel = accel = self.accel
        abits = max(1, (self.depth - 1).bit_length())
        in_range = {p: getattr(accel, f"{p}_addr") < self.depth for p in ("fetch", "ld", "st")}
        addr = {p: getattr(accel, f"{p}_addr")[:abits] for p in ("fetch", "ld", "st")}
        # An out-of-range write is dropped (not wrapped onto a low word) and flagged below.
        wen = accel.st_wstrb & (accel.st_we & in_range["st"]).replicate(cfg.host_port_bytes)
        m.d.comb += [
            accel.start.eq(self.start),
            self.done.eq(accel.done),
            self.error.eq(accel.error),
            self.cycles.eq(accel.cycles),
            self.busy_pe.eq(accel.busy_pe),
        ]
        if self.verilog_memory:
            m.submodules[MEM_INSTANCE] = Instance(
                MEM_MODULE, p_WIDTH=cfg.host_port_width, p_DEPTH=self.depth, p_ABITS=abits,
                i_clk=ClockSignal("sync"),
                i_f_re=accel.fetch_re, i_f_addr=addr["fetch"], **{f"o_{MEM_RDATA[0]}": accel.fetch_rdata},
                i_l_re=accel.ld_re, i_l_addr=addr["ld"], **{f"o_{MEM_RDATA[1]}": accel.ld_rdata},
                i_waddr=addr["st"], i_wen=wen, i_wdata=accel.st_wdata)
        else:
            m.submodules[MEM_INSTANCE] = mem = self.memory
            wr = mem.write_port(granularity=8)
            for p in ("fetch", "ld"):            # sync domain: 1-cycle latency, old data on a write
                rd = mem.read_port()
                m.d.comb += [rd.addr.eq(addr[p]), rd.en.eq(getattr(accel, f"{p}_re")),
                             getattr(accel, f"{p}_rdata").eq(rd.data)]
            m.d.comb += [wr.addr.eq(addr["st"]), wr.data.eq(accel.st_wdata), wr.en.eq(wen)]
        oob = Signal()
        with m.If((accel.fetch_re & ~in_range["fetch"]) | (accel.ld_re & ~in_range["ld"])
                  | (accel.st_we & ~in_range["st"])):
            m.d.sync += oob.eq(1)
        m.d.comb += self.mem_oob.eq(oob)
        return m


def harness_verilog(cfg: AcceleratorConfig, mem_bytes: int, accel_factory: AccelFactory | None = None) -> str:
    """The Verilog text of :class:`Harness` (top module :data:`TOP_NAME`), without source locations.

    Includes the host-memory module (:data:`MEM_MODULE_VERILOG`). ``emit_src=False`` keeps the
    text identical across checkouts, so it can key the build cache.
    """
    factory = accel_factory or default_accelerator
    top = Harness(cfg, mem_bytes, factory(cfg), verilog_memory=True)
    return verilog.convert(top, name=TOP_NAME, emit_src=False) + MEM_MODULE_VERILOG


def vlt_text(extra: tuple[tuple[str, str], ...] = ()) -> str:
    """A Verilator control file making only the testbench's signals visible to VPI.

    Why: cocotb's stock runner passes ``--public-flat-rw``, which makes every
    signal public; that blocks Verilator's optimisations (7-8x slower
    simulation, 4x more C++). The bench needs the top's ports and the memory
    array; ``extra`` adds (module, variable) pairs (e.g. fault-injection sites).
    """
    pairs = [(TOP_NAME, v) for v in TOP_PUBLIC] + [(MEM_MODULE, MEM_VAR), *extra]
    lines = ["`verilator_config", ""]
    lines += [f'public_flat_rw -module "{mod}" -var "{var}"' for mod, var in pairs]
    return "\n".join(lines) + "\n"
