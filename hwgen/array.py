"""The R x C systolic array with its input skew and output de-skew registers.

Row i's left input is delayed by i cycles and (output-stationary) column j's
top input by j cycles, so that PE(i, j) sees word k of both streams in the same
cycle. Weight-stationary partial sums leave the bottom row skewed by the
column index; column j is delayed by C-1-j cycles so a whole output row leaves
in one cycle. Output-stationary readout shifts the accumulators down, already
aligned, so it bypasses the de-skew.

With ``shadow`` (weight-stationary shadow weights, :mod:`hwgen.pe`) the weight feed also enters
the shadow chains straight down (``w_shift``), and ``a_first`` (a tile's first A word) enters a
one-bit skew chain per row beside the A data (``skew_t_r<i>_<k>``), so that the tag reaches PE(i, j)
with word 0.

With ``checksum`` (the ABFT mechanism, :mod:`hwgen.safety`) a column of R more PEs,
``pe_r<i>_c<C>``, computes beside column C-1 with column C-1's timing: each takes the A value
PE(i, C-1) takes, its weight is ``chk_feed`` (the sum of the row's C weights, wider by log2 C bits)
through column C-1's skew, and its output leaves with column C-1's. So its accumulator is the sum of
the row's C outputs (modulo the accumulator width, like them), which the store unit checks, and the
array's schedule is unchanged. A fault in a PE, in a weight's skew or in the de-skew breaks that sum;
one in the A skew (an input error, which every column and the checksum see alike) does not.

Vectors are flat bit-vectors (lane i at bits [i*w, (i+1)*w)) so that they map
directly onto scratchpad words.
"""

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .pe import ProcessingElement
from .safety import checksum_weight_bits

__all__ = ["SystolicArray"]


class SystolicArray(wiring.Component):
    """R x C grid of PEs (a leaf block with plain parameters)."""

    def __init__(self, rows: int, cols: int, a_width: int, b_width: int, acc_width: int,
                 os: bool = True, ws: bool = True, shadow: bool = False, checksum: bool = False):
        self.rows, self.cols = rows, cols
        self.a_width, self.b_width, self.acc_width = a_width, b_width, acc_width
        self.os, self.ws, self.shadow = os, ws, shadow and ws
        self.checksum = checksum
        super().__init__(self.signature_for(rows, cols, a_width, b_width, acc_width, self.shadow, checksum))
        self.pes = [[ProcessingElement(a_width, b_width, acc_width, os=os, ws=ws, shadow=self.shadow)
                     for _ in range(cols)] for _ in range(rows)]
        cbw = checksum_weight_bits(b_width, cols)
        #: the checksum column (ABFT), column index ``cols``
        self.chk_pes = [ProcessingElement(a_width, cbw, acc_width, os=os, ws=ws, shadow=self.shadow)
                        for _ in range(rows)] if checksum else []
        self.skew_chk = [Signal(signed(cbw), name=f"skew_b_c{cols}_{k}") for k in range(cols - 1)] \
            if checksum and os else []
        self.skew_t = [[Signal(name=f"skew_t_r{i}_{k}") for k in range(i)] if self.shadow else []
                       for i in range(rows)]
        # skew_a[i] has i registers, skew_b[j] has j (os only), deskew[j] has C-1-j (ws only)
        self.skew_a = [[Signal(signed(a_width), name=f"skew_a_r{i}_{k}") for k in range(i)] for i in range(rows)]
        self.skew_b = [[Signal(signed(b_width), name=f"skew_b_c{j}_{k}") for k in range(j)] if os else []
                       for j in range(cols)]
        self.deskew_regs = [[Signal(signed(acc_width), name=f"deskew_c{j}_{k}") for k in range(cols - 1 - j)]
                            if ws else [] for j in range(cols)]

    @staticmethod
    def signature_for(rows: int, cols: int, a_width: int, b_width: int, acc_width: int,
                      shadow: bool = False, checksum: bool = False) -> wiring.Signature:
        """The array's signature (its driver, the compute unit, has the flipped one) without building it.
        With ``checksum``: the checksum weight ``chk_feed``, and ``out`` has the checksum lane after the
        columns."""
        return wiring.Signature({
            "a_feed": In(unsigned(rows * a_width)),
            "b_feed": In(unsigned(cols * b_width)),
            **({"chk_feed": In(signed(checksum_weight_bits(b_width, cols)))} if checksum else {}),
            "out": Out(unsigned((cols + checksum) * acc_width)),
            "clear": In(1),
            "b_shift": In(1),
            "b_skew": In(1),     # os: skew the top input; ws preload: straight down
            "use_b_reg": In(1),
            "acc_self": In(1),
            "mul_en": In(1),
            "deskew": In(1),     # ws: take the bottom row through the de-skew registers
            # shadow weights: shift the weight feed into the shadow chains; the A feed is a tile's first word
            **({"w_shift": In(1), "a_first": In(1)} if shadow else {}),
        })

    @staticmethod
    def _chain(m: Module, clear, head, regs: list) -> "Signal":
        """A shift register: head -> regs[0] -> ... -> regs[-1]; returns the output."""
        prev = head
        for r in regs:
            with m.If(clear):
                m.d.sync += r.eq(0)
            with m.Else():
                m.d.sync += r.eq(prev)
            prev = r
        return prev

    def elaborate(self, platform):
        m = Module()
        R, C = self.rows, self.cols
        aw, bw = self.a_width, self.b_width

        for i in range(R):
            for j in range(C):
                pe = self.pes[i][j]
                m.submodules[f"pe_r{i}_c{j}"] = pe
                m.d.comb += [
                    pe.clear.eq(self.clear), pe.b_shift.eq(self.b_shift), pe.use_b_reg.eq(self.use_b_reg),
                    pe.acc_self.eq(self.acc_self), pe.mul_en.eq(self.mul_en),
                ]
                if self.shadow:
                    m.d.comb += pe.w_shift.eq(self.w_shift)

        for i in range(R):
            lane = self.a_feed[i * aw:(i + 1) * aw].as_signed()
            m.d.comb += self.pes[i][0].a_in.eq(self._chain(m, self.clear, lane, self.skew_a[i]))
            for j in range(1, C):
                m.d.comb += self.pes[i][j].a_in.eq(self.pes[i][j - 1].a_out)
            if self.shadow:
                m.d.comb += self.pes[i][0].tag_in.eq(self._chain(m, self.clear, self.a_first, self.skew_t[i]))
                for j in range(1, C):
                    m.d.comb += self.pes[i][j].tag_in.eq(self.pes[i][j - 1].tag_out)

        for j in range(C):
            lane = self.b_feed[j * bw:(j + 1) * bw].as_signed()
            if self.os:
                skewed = self._chain(m, self.clear, lane, self.skew_b[j])
                top = Mux(self.b_skew, skewed, lane) if self.ws else skewed
            else:
                top = lane
            m.d.comb += [self.pes[0][j].b_in.eq(top), self.pes[0][j].psum_in.eq(0)]
            if self.shadow:
                m.d.comb += self.pes[0][j].w_in.eq(lane)
            for i in range(1, R):
                m.d.comb += [self.pes[i][j].b_in.eq(self.pes[i - 1][j].b_out),
                             self.pes[i][j].psum_in.eq(self.pes[i - 1][j].acc_out)]
                if self.shadow:
                    m.d.comb += self.pes[i][j].w_in.eq(self.pes[i - 1][j].w_out)

        outs = []
        for j in range(C):
            bottom = self.pes[R - 1][j].acc_out
            if self.ws:
                delayed = self._chain(m, self.clear, bottom, self.deskew_regs[j])
                outs.append(Mux(self.deskew, delayed, bottom) if self.os else delayed)
            else:
                outs.append(bottom)
        if self.checksum:
            outs.append(self._checksum_column(m))
        m.d.comb += self.out.eq(Cat(*outs))
        return m

    def _checksum_column(self, m: Module):
        """The ABFT column, wired as a copy of column C-1 (its A inputs and tags are column C-1's, its
        weight goes through a skew as long as column C-1's, its output needs no de-skew, as column C-1's);
        returns its output."""
        R, C = self.rows, self.cols
        for i, pe in enumerate(self.chk_pes):
            m.submodules[f"pe_r{i}_c{C}"] = pe
            twin = self.pes[i][C - 1]
            m.d.comb += [pe.clear.eq(self.clear), pe.b_shift.eq(self.b_shift), pe.use_b_reg.eq(self.use_b_reg),
                         pe.acc_self.eq(self.acc_self), pe.mul_en.eq(self.mul_en), pe.a_in.eq(twin.a_in)]
            if self.shadow:
                m.d.comb += [pe.w_shift.eq(self.w_shift), pe.tag_in.eq(twin.tag_in)]
        lane = self.chk_feed
        if self.os:
            skewed = self._chain(m, self.clear, lane, self.skew_chk)
            top = Mux(self.b_skew, skewed, lane) if self.ws else skewed
        else:
            top = lane
        pes = self.chk_pes
        m.d.comb += [pes[0].b_in.eq(top), pes[0].psum_in.eq(0)]
        if self.shadow:
            m.d.comb += pes[0].w_in.eq(lane)
        for i in range(1, R):
            m.d.comb += [pes[i].b_in.eq(pes[i - 1].b_out), pes[i].psum_in.eq(pes[i - 1].acc_out)]
            if self.shadow:
                m.d.comb += pes[i].w_in.eq(pes[i - 1].w_out)
        return pes[R - 1].acc_out
