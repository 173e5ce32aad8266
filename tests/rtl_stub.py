"""A tiny stand-in for hwgen.top.Accelerator with the same ports, for the RTL infrastructure tests.

Why: the harness, the build cache and the cocotb bench must be testable without
the real accelerator (and stay testable when it changes). The stub exercises
everything the bench relies on: synchronous reads (on the fetch port), byte-enabled writes (the
store port), the
performance counters, ``done``/``error`` and a way to hang (for the timeout).

Behaviour, on a ``start`` pulse (host port at least 32 bits wide):

* read word 0, the header: bits [15:0] = n, bits [31:16] = destination WORD
  address, top bit set = raise ``error`` and halt at once;
* read words 1..n and add up all their bytes (mod 2**32);
* write the sum into the low 4 bytes of the destination word (write strobe
  0b1111: the upper bytes keep their value), then halt.

``cycles`` = n + 2 (1 header cycle, n summing cycles, 1 write cycle), or 1 on
an error; ``busy_pe`` = n. :func:`expected` computes the same from an image.
"""

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.config import AcceleratorConfig
from hwgen.top import host_ports

__all__ = ["StubAccelerator", "expected", "stub_image"]


class StubAccelerator(wiring.Component):
    """Same signature as ``hwgen.top.Accelerator(cfg)``; see the module docstring."""

    def __init__(self, cfg: AcceleratorConfig):
        if cfg.host_port_width < 32:
            raise ValueError("the stub needs a host port of at least 32 bits")
        self.cfg = cfg
        super().__init__({
            "start": In(1),
            "done": Out(1),
            "error": Out(1),
            "cycles": Out(48),
            "busy_pe": Out(48),
            **host_ports(cfg),
        })

    def elaborate(self, platform) -> Module:
        m = Module()
        w = self.cfg.host_port_width
        nbytes = self.cfg.host_port_bytes
        ptr = Signal(16)
        remaining = Signal(16)
        dst = Signal(16)
        acc = Signal(32)
        byte_sum = sum(self.fetch_rdata[8 * i:8 * i + 8] for i in range(nbytes))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.fetch_addr.eq(0), self.fetch_re.eq(self.start)]
                with m.If(self.start):
                    m.d.sync += [self.done.eq(0), self.error.eq(0), self.cycles.eq(0), self.busy_pe.eq(0),
                                 acc.eq(0), ptr.eq(1)]
                    m.next = "HDR"
            with m.State("HDR"):
                m.d.sync += self.cycles.eq(self.cycles + 1)
                n = self.fetch_rdata[0:16]
                m.d.sync += dst.eq(self.fetch_rdata[16:32])
                with m.If(self.fetch_rdata[w - 1]):
                    m.d.sync += [self.error.eq(1), self.done.eq(1)]
                    m.next = "IDLE"
                with m.Elif(n == 0):
                    m.next = "WRITE"
                with m.Else():
                    m.d.comb += [self.fetch_addr.eq(ptr), self.fetch_re.eq(1)]
                    m.d.sync += [ptr.eq(ptr + 1), remaining.eq(n)]
                    m.next = "SUM"
            with m.State("SUM"):
                m.d.sync += [self.cycles.eq(self.cycles + 1), self.busy_pe.eq(self.busy_pe + 1),
                             acc.eq(acc + byte_sum), remaining.eq(remaining - 1)]
                with m.If(remaining == 1):
                    m.next = "WRITE"
                with m.Else():
                    m.d.comb += [self.fetch_addr.eq(ptr), self.fetch_re.eq(1)]
                    m.d.sync += ptr.eq(ptr + 1)
            with m.State("WRITE"):
                m.d.sync += [self.cycles.eq(self.cycles + 1), self.done.eq(1)]
                m.d.comb += [self.st_addr.eq(dst), self.st_we.eq(1), self.st_wstrb.eq(0b1111),
                             self.st_wdata.eq(acc)]
                m.next = "IDLE"
        return m


def stub_image(cfg: AcceleratorConfig, mem_size: int, data: np.ndarray, dst_word: int,
               error: bool = False) -> np.ndarray:
    """A host-memory image for the stub: header, then ``data`` (uint8) padded to whole words."""
    nb = cfg.host_port_bytes
    data = np.asarray(data, dtype=np.uint8)
    n = -(-data.size // nb)
    img = np.zeros(mem_size, dtype=np.uint8)
    hdr = n | (dst_word << 16)
    img[0:4] = np.frombuffer(int(hdr).to_bytes(4, "little"), dtype=np.uint8)
    if error:
        img[nb - 1] |= 0x80
    img[nb:nb + data.size] = data
    return img


def expected(cfg: AcceleratorConfig, image: np.ndarray) -> tuple[np.ndarray, int, int, bool]:
    """(final memory, cycles, busy_pe, error) that the stub produces from ``image``."""
    nb = cfg.host_port_bytes
    mem = np.array(image, dtype=np.uint8)
    hdr = int.from_bytes(bytes(mem[0:4]), "little")
    if mem[nb - 1] & 0x80:
        return mem, 1, 0, True
    n, dst = hdr & 0xFFFF, hdr >> 16
    total = int(mem[nb:nb * (n + 1)].astype(np.uint64).sum()) & 0xFFFFFFFF
    mem[dst * nb:dst * nb + 4] = np.frombuffer(total.to_bytes(4, "little"), dtype=np.uint8)
    return mem, n + 2, n, False
