"""Processing element: one multiply-accumulate cell of the systolic array.

One PE serves both dataflows so that a reconfigurable array is the same grid
of cells with different control:

* output-stationary: ``acc <= acc + a_in * b_in``; a and b move right and down.
* weight-stationary: ``b_reg`` holds the weight (shifted in during preload),
  ``acc <= psum_in + a_in * b_reg`` and the partial sum moves down.
* readout (output-stationary): ``acc <= psum_in`` shifts finished sums down
  and fills the array with zeros behind them.

With ``shadow`` (the decoupled controller's array) a weight-stationary preload shifts down a
second chain, ``w_shadow`` (``w_in`` -> ``w_out``, while ``w_shift``), so the active weight in
``b_reg`` stays in use; a tag travelling with the A data (``tag_in`` -> ``a_tag`` -> ``tag_out``)
marks a tile's first word, and the PE multiplies that word by the shadow weight and copies it into
``b_reg``. So the next tile's weights load while the previous tile streams, and the swap moves
through the array with the data wavefront.

Its registers (a_reg, b_reg, acc; w_shadow, a_tag) are the PE's fault sites; they are
attributes so the fault-site inventory can name them.
"""

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """A MAC cell with plain width parameters (a leaf block: no config object)."""

    def __init__(self, a_width: int, b_width: int, acc_width: int, os: bool = True, ws: bool = True,
                 shadow: bool = False):
        self.a_width, self.b_width, self.acc_width = a_width, b_width, acc_width
        self.os, self.ws, self.shadow = os, ws, shadow and ws
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
            **({"w_in": In(signed(b_width)), "w_out": Out(signed(b_width)), "w_shift": In(1),
                "tag_in": In(1), "tag_out": Out(1)} if self.shadow else {}),
        })
        self.a_reg = Signal(signed(a_width))
        self.b_reg = Signal(signed(b_width))
        self.acc = Signal(signed(acc_width))
        self.w_shadow = Signal(signed(b_width), name="w_shadow") if self.shadow else None
        self.a_tag = Signal(name="a_tag") if self.shadow else None

    def elaborate(self, platform):
        m = Module()
        # the stationary weight: with shadow weights, a tile's first word takes the shadow one
        b_ws = Mux(self.tag_in, self.w_shadow, self.b_reg) if self.shadow else self.b_reg
        if self.os and self.ws:
            b_mul = Mux(self.use_b_reg, b_ws, self.b_in)
            base = Mux(self.acc_self, self.acc, self.psum_in)
        elif self.os:
            b_mul = self.b_in
            base = Mux(self.acc_self, self.acc, self.psum_in)
        else:
            b_mul = b_ws
            base = self.psum_in
        product = Mux(self.mul_en, self.a_in * b_mul, 0)

        m.d.comb += [
            self.a_out.eq(self.a_reg),
            self.b_out.eq(self.b_reg),
            self.acc_out.eq(self.acc),
        ]
        if self.shadow:
            m.d.comb += [self.w_out.eq(self.w_shadow), self.tag_out.eq(self.a_tag)]
        with m.If(self.clear):
            m.d.sync += [self.a_reg.eq(0), self.b_reg.eq(0), self.acc.eq(0)]
            if self.shadow:
                m.d.sync += [self.w_shadow.eq(0), self.a_tag.eq(0)]
        with m.Else():
            m.d.sync += [self.a_reg.eq(self.a_in), self.acc.eq(base + product)]
            with m.If(self.b_shift):
                m.d.sync += self.b_reg.eq(self.b_in)
            if self.shadow:
                m.d.sync += self.a_tag.eq(self.tag_in)
                with m.If(self.w_shift):
                    m.d.sync += self.w_shadow.eq(self.w_in)
                with m.If(self.tag_in & self.use_b_reg):
                    m.d.sync += self.b_reg.eq(self.w_shadow)
        return m
