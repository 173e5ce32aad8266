"""Processing element: one multiply-accumulate cell of the systolic array.

One PE serves both dataflows so that a reconfigurable array is the same grid
of cells with different control:

* output-stationary: ``acc <= acc + a_in * b_in``; a and b move right and down.
* weight-stationary: ``b_reg`` holds the weight (shifted in during preload),
  ``acc <= psum_in + a_in * b_reg`` and the partial sum moves down.
* readout (output-stationary): ``acc <= psum_in`` shifts finished sums down
  and fills the array with zeros behind them.

Its three registers (a_reg, b_reg, acc) are the PE's fault sites; they are
attributes so the fault-site inventory can name them.
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """A MAC cell with plain width parameters (a leaf block: no config object)."""

    def __init__(self, a_width: int, b_width: int, acc_width: int, os: bool = True, ws: bool = True):
        self.a_width, self.b_width, self.acc_width = a_width, b_width, acc_width
        self.os, self.ws = os, ws
        super().__init__({
            "a_in": In(signed(a_width)),
            "b_in": In(signed(b_width)),
            "psum_in": In(signed(acc_width)),
            "a_out": Out(signed(a_width)),
            "b_out": Out(signed(b_width)),
            "acc_out": Out(signed(acc_width)),
            # control, shared by the whole array
            "clear": In(1),      # zero every register
            "b_shift": In(1),    # b_reg <= b_in (os: every cycle; ws: weight preload)
            "use_b_reg": In(1),  # multiply by the stationary weight (ws) instead of b_in (os)
            "acc_self": In(1),   # accumulate into acc (os) instead of psum_in (ws, readout)
            "mul_en": In(1),     # add the product (off during preload and readout)
        })
        self.a_reg = Signal(signed(a_width))
        self.b_reg = Signal(signed(b_width))
        self.acc = Signal(signed(acc_width))

    def elaborate(self, platform):
        m = Module()
        if self.os and self.ws:
            b_mul = Mux(self.use_b_reg, self.b_reg, self.b_in)
            base = Mux(self.acc_self, self.acc, self.psum_in)
        elif self.os:
            b_mul = self.b_in
            base = Mux(self.acc_self, self.acc, self.psum_in)
        else:
            b_mul = self.b_reg
            base = self.psum_in
        product = Mux(self.mul_en, self.a_in * b_mul, 0)

        m.d.comb += [
            self.a_out.eq(self.a_reg),
            self.b_out.eq(self.b_reg),
            self.acc_out.eq(self.acc),
        ]
        with m.If(self.clear):
            m.d.sync += [self.a_reg.eq(0), self.b_reg.eq(0), self.acc.eq(0)]
        with m.Else():
            m.d.sync += [self.a_reg.eq(self.a_in), self.acc.eq(base + product)]
            with m.If(self.b_shift):
                m.d.sync += self.b_reg.eq(self.b_in)
        return m
