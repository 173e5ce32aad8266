"""Importer for SCALE-Sim topology files (convolution and GEMM/MNK formats).

Conventions, as SCALE-Sim 3.0.0 implements them (``scalesim/topology_utils.py``
of the PyPI wheel, same in scale-sim-v2's repository):

* The first line is a header and is skipped whatever it says; blank lines are
  skipped. Each other line is split on ``,`` and the last field is dropped
  (``row.split(',')[:-1]``), so rows end in a trailing comma. This reader
  also accepts a row without the trailing comma.
* Convolution rows: ``Layer name, IFMAP Height, IFMAP Width, Filter Height,
  Filter Width, Channels, Num Filter, Strides,``, one stride for both
  directions; an optional 9th field is the v3 sparsity ratio ``N:M``
  (default ``1:1``). scale-sim-v2 read an integer 9th field as the column
  stride; this reader accepts that too (``stride_w``).
* Every row is an independent layer: nothing links one row's output to the
  next row's input, and there is no padding field.
* Output size (``topo_calc_hyperparams``): ``ofmap_h = ceil((ifmap_h -
  filter_h + stride_h) / stride_h)``, i.e. ``ceil((ifmap - filter) / stride) +
  1``; it rounds *up* where the usual no-padding formula ``floor(...) + 1``
  rounds down, and the extra output row/column reads past the ifmap: its
  operand matrix marks those addresses -1 ("for padded address" in
  ``compute/operand_matrix.py``), i.e. implicit zero padding at the bottom and
  right. Example: ResNet-50's 7x7/2 stem on 224 gives 110x110 (not 109), and a
  1x1/2 conv on 56 gives 29x29 (not 28). MACs = ofmap_h * ofmap_w * filter_h *
  filter_w * channels * num_filter; window (K) = filter_h * filter_w *
  channels.
* A row whose name contains ``DP`` is depthwise: SCALE-Sim simulates it as
  ``Channels`` separate layers named ``<name>Channel_<i>`` with one channel
  each. Rows without ``DP`` are plain convolutions, whatever their numbers:
  SCALE-Sim's own MobileNet CSV writes its depthwise layers as ``Num Filter =
  1`` rows over all channels (one filter of depth C), and SCALE-Sim simulates
  exactly that, so this reader does too.
* SCALE-Sim asserts filter <= ifmap in each direction; so does this reader.
* GEMM (``-i gemm``) rows: ``Layer name, M, N, K,`` (optional 5th field
  ``N:M`` sparsity). SCALE-Sim turns a row into the convolution ``[M, K, 1, K,
  1, N, 1, 1]`` (ifmap M x K, filter 1 x K, one channel, N filters, stride
  1): an M x 1 output per filter, window K.

The graph built from a topology has, per row, an :class:`Input` node
``<name>.ifmap`` feeding a :class:`Conv2d` node ``<name>`` (a :class:`Gemm` for
GEMM rows; one grouped Conv2d with ``groups = Channels`` for a ``DP`` row).
With the default ``rounding="scalesim"`` each Conv2d gets the bottom/right
padding that reproduces SCALE-Sim's output size (zero on most rows), so graph
MACs equal SCALE-Sim's; ``rounding="floor"`` builds pad-free convolutions
instead. The raw rows stay available as :class:`ScaleSimLayer` s with
SCALE-Sim's derived quantities (``ofmap_h``, ``window``, ``macs``,
``spatiotemporal(df)``) for a SCALE-Sim-compatible cost model.

Untrusted files: the file is read with the ``file_bytes`` cap (refused from its
size before reading); every integer field is at most 24 characters, positive
and within the ``dimension`` limit; each row's tensors (ifmap, filters, ofmap;
GEMM input, weights, output) pass :func:`mappings.graph.check_shape` and its
MACs the ``layer_macs`` limit, before any graph is built. Every failure is a
:class:`ScaleSimFormatError` naming the file, line and column when known
(:class:`ScaleSimLimitError`, also a ``LimitError``, for a limit), never any
other exception (tests/test_fuzz_importers.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .graph import Conv2d, Gemm, GraphError, Input, LayerGraph, check_shape
from hwgen.dataflow import Dataflow
from hwgen.errors import HwgenError, LimitError
from hwgen.fileio import read_input_file
from hwgen.limits import check_limit

__all__ = ["ScaleSimFormatError", "ScaleSimLimitError", "ScaleSimLayer", "ScaleSimTopology", "CONV_COLUMNS",
           "GEMM_COLUMNS", "parse_topology", "read_topology", "load_scalesim_csv", "rows_to_graph"]

CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                "Num Filter", "Strides")
GEMM_COLUMNS = ("Layer name", "M", "N", "K")


class ScaleSimFormatError(HwgenError, ValueError):
    """A malformed topology file; names the file, the line (1-based) and the column when known."""

    def __init__(self, path: str, line: int | None, column: str | None, msg: str):
        self.path, self.line, self.column = path, line, column
        where = path if line is None else f"{path}:{line}"
        if column is not None:
            where += f": column '{column}'"
        super().__init__(f"{where}: {msg}")


class ScaleSimLimitError(ScaleSimFormatError, LimitError):
    """A size a row declares (a field, a tensor, a layer's MACs, the file) above a stated limit
    (:mod:`hwgen.limits`): a format error that callers catching ``LimitError`` also see."""


@dataclass(frozen=True)
class ScaleSimLayer:
    """One layer as SCALE-Sim sees it (raw values of a conv row, or a GEMM row in its conv form)."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filter: int
    stride: int
    #: column stride when the row gave one (scale-sim-v2's 9-field rows); None: same as ``stride``
    stride_w: int | None = None
    #: sparsity ratio "N:M" of SCALE-Sim v3 rows, as written ("1:1" when absent)
    sparsity: str = "1:1"
    #: 1-based line of the file the row came from (0 when not from a file)
    line: int = field(default=0, compare=False)
    #: (M, N, K) when the row came from a GEMM topology
    gemm: tuple[int, int, int] | None = None

    @property
    def depthwise(self) -> bool:
        """SCALE-Sim's rule: the layer name contains 'DP'."""
        return "DP" in self.name

    @property
    def strides(self) -> tuple[int, int]:
        return (self.stride, self.stride if self.stride_w is None else self.stride_w)

    @property
    def ofmap_h(self) -> int:
        sh = self.strides[0]
        return -(-(self.ifmap_h - self.filter_h + sh) // sh)  # ceil, in exact integers

    @property
    def ofmap_w(self) -> int:
        sw = self.strides[1]
        return -(-(self.ifmap_w - self.filter_w + sw) // sw)

    @property
    def ofmap_px(self) -> int:
        """Output pixels per filter (SCALE-Sim's ``num_ofmap / num_filt``)."""
        return self.ofmap_h * self.ofmap_w

    @property
    def window(self) -> int:
        """Convolution window size: the GEMM K dimension."""
        return self.filter_h * self.filter_w * self.channels

    @property
    def macs(self) -> int:
        return self.ofmap_px * self.window * self.num_filter

    def tensors(self) -> list[tuple[str, tuple[int, ...]]]:
        """The tensors the row declares, named, in the logical shapes of the graph built from it."""
        if self.gemm is not None:
            m, n, k = self.gemm
            return [("input", (m, k)), ("weights", (k, n)), ("output", (m, n))]
        groups = self.channels if self.depthwise else 1
        out = self.num_filter * groups
        return [("ifmap", (1, self.channels, self.ifmap_h, self.ifmap_w)),
                ("filters", (out, self.channels // groups, self.filter_h, self.filter_w)),
                ("ofmap", (1, out, self.ofmap_h, self.ofmap_w))]

    @property
    def mnk(self) -> tuple[int, int, int]:
        """(M, N, K) = (ofmap pixels, filters, window), SCALE-Sim's ``get_transformed_mnk_dimensions``
        (it reports M as ofmap pixels times filters; here M is per filter, the GEMM's M)."""
        return (self.ofmap_px, self.num_filter, self.window)

    def spatiotemporal(self, dataflow: str) -> tuple[int, int, int]:
        """(S_r, S_c, T) of SCALE-Sim's ``calc_spatio_temporal_params`` for dataflow os/ws/is."""
        df = dataflow.lower()
        if df == Dataflow.OS:
            return (self.ofmap_px, self.num_filter, self.window)
        if df == Dataflow.WS:
            return (self.window, self.num_filter, self.ofmap_px)
        if df == "is":
            return (self.window, self.ofmap_px, self.num_filter)
        raise ValueError(f"unknown dataflow '{dataflow}' (os, ws or is)")

    def expanded(self) -> list["ScaleSimLayer"]:
        """The layers SCALE-Sim simulates for this row: a DP row becomes one per channel."""
        if not self.depthwise:
            return [self]
        return [ScaleSimLayer(f"{self.name}Channel_{i}", self.ifmap_h, self.ifmap_w, self.filter_h, self.filter_w,
                              1, self.num_filter, self.stride, self.stride_w, self.sparsity, self.line, self.gemm)
                for i in range(self.channels)]


@dataclass
class ScaleSimTopology:
    """A parsed topology file: its rows (as written) and the layer graph built from them."""

    path: str
    kind: str  # "conv" or "gemm"
    rows: list[ScaleSimLayer]
    graph: LayerGraph

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def layers(self) -> list[ScaleSimLayer]:
        """The layer list SCALE-Sim runs (DP rows expanded per channel)."""
        return [layer for row in self.rows for layer in row.expanded()]

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def __len__(self) -> int:
        return len(self.rows)


# -------------------------------------------------------------------- parsing
def _fields(line: str) -> list[str]:
    parts = [p.strip() for p in line.split(",")]
    if len(parts) > 1 and parts[-1] == "":  # the trailing comma SCALE-Sim expects
        parts.pop()
    return parts


def _shown(text: str) -> str:
    """A field as quoted in a message: at most 40 characters, however long the field."""
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text):,} characters)"


def _int(path: str, lineno: int, column: str, text: str) -> int:
    """A positive integer field, at most the ``dimension`` limit (a 4,301-digit field is refused unparsed)."""
    if len(text) > 24:
        raise ScaleSimFormatError(path, lineno, column, f"expected a positive integer, got {_shown(text)}")
    try:
        v = int(text)
    except ValueError:
        raise ScaleSimFormatError(path, lineno, column, f"expected a positive integer, got {_shown(text)}"
                                  if text else "empty value") from None
    if v < 1:
        raise ScaleSimFormatError(path, lineno, column, f"expected a positive integer, got {v}")
    try:
        check_limit("dimension", v, "value")
    except LimitError as e:
        raise ScaleSimLimitError(path, lineno, column, str(e)) from None
    return v


def _check_sizes(path: str, row: ScaleSimLayer) -> ScaleSimLayer:
    """The row's tensors and MACs within the limits (:func:`mappings.graph.check_shape`, ``layer_macs``),
    before a graph, the mapper or a cost model is built from it."""
    layer = f"layer '{row.name}'" if len(row.name) <= 40 else f"layer '{row.name[:37]}...'"
    try:
        for what, shape in row.tensors():
            check_shape(shape, f"{layer}: {what}")
        check_limit("layer_macs", row.macs, f"{layer}: multiply-accumulates")
    except LimitError as e:
        raise ScaleSimLimitError(path, row.line, None, str(e)) from None
    except GraphError as e:
        raise ScaleSimFormatError(path, row.line, None, str(e)) from None
    return row


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _sparsity(path: str, lineno: int, column: str, text: str) -> str:
    parts = text.split(":")
    if len(text) > 24 or len(parts) != 2 or not all(_is_int(p.strip()) and int(p) >= 1 for p in parts):
        raise ScaleSimFormatError(path, lineno, column, f"expected a sparsity ratio N:M, got {_shown(text)}")
    n, m = (int(p) for p in parts)
    if n > m:
        raise ScaleSimFormatError(path, lineno, column, f"sparsity ratio {_shown(text)} has N > M")
    return f"{n}:{m}"


def _parse_conv_row(path: str, lineno: int, f: list[str]) -> ScaleSimLayer:
    if len(f) < len(CONV_COLUMNS):
        raise ScaleSimFormatError(path, lineno, CONV_COLUMNS[len(f)],
                                  f"missing (row has {len(f)} of the {len(CONV_COLUMNS)} fields)")
    if len(f) > len(CONV_COLUMNS) + 1:
        raise ScaleSimFormatError(path, lineno, f"#{len(CONV_COLUMNS) + 2}",
                                  f"too many fields ({len(f)}; expected {len(CONV_COLUMNS)}, or "
                                  f"{len(CONV_COLUMNS) + 1} with a sparsity ratio)")
    if not f[0]:
        raise ScaleSimFormatError(path, lineno, CONV_COLUMNS[0], "empty layer name")
    ih, iw, fh, fw, ch, nf, s = (_int(path, lineno, c, t) for c, t in zip(CONV_COLUMNS[1:], f[1:8]))
    stride_w, sparsity = None, "1:1"
    if len(f) == 9:
        if ":" in f[8]:
            sparsity = _sparsity(path, lineno, "Sparsity", f[8])
        else:
            stride_w = _int(path, lineno, "Stride width", f[8])
    if fh > ih:
        raise ScaleSimFormatError(path, lineno, "Filter Height", f"filter height {fh} > IFMAP height {ih}")
    if fw > iw:
        raise ScaleSimFormatError(path, lineno, "Filter Width", f"filter width {fw} > IFMAP width {iw}")
    return _check_sizes(path, ScaleSimLayer(f[0], ih, iw, fh, fw, ch, nf, s, stride_w, sparsity, lineno))


def _parse_gemm_row(path: str, lineno: int, f: list[str]) -> ScaleSimLayer:
    if len(f) < len(GEMM_COLUMNS):
        raise ScaleSimFormatError(path, lineno, GEMM_COLUMNS[len(f)],
                                  f"missing (row has {len(f)} of the {len(GEMM_COLUMNS)} fields)")
    if len(f) > len(GEMM_COLUMNS) + 1:
        raise ScaleSimFormatError(path, lineno, f"#{len(GEMM_COLUMNS) + 2}",
                                  f"too many fields ({len(f)}; expected {len(GEMM_COLUMNS)}, or "
                                  f"{len(GEMM_COLUMNS) + 1} with a sparsity ratio)")
    if not f[0]:
        raise ScaleSimFormatError(path, lineno, GEMM_COLUMNS[0], "empty layer name")
    m, n, k = (_int(path, lineno, c, t) for c, t in zip(GEMM_COLUMNS[1:], f[1:4]))
    sparsity = _sparsity(path, lineno, "Sparsity", f[4]) if len(f) == 5 else "1:1"
    # SCALE-Sim's conv form of a GEMM: ifmap M x K, filter 1 x K, 1 channel, N filters, stride 1
    return _check_sizes(path, ScaleSimLayer(f[0], m, k, 1, k, 1, n, 1, None, sparsity, lineno, gemm=(m, n, k)))


def parse_topology(text: str, path: str = "<string>", fmt: str = "auto", rounding: str = "scalesim",
                   name: str | None = None) -> ScaleSimTopology:
    """Parse topology text. ``fmt``: "conv", "gemm" or "auto" (gemm when the header's second field is "M")."""
    if fmt not in ("auto", "conv", "gemm"):
        raise ValueError(f"fmt must be 'auto', 'conv' or 'gemm', got {fmt!r}")
    lines = text.splitlines()
    header_no = next((i for i, ln in enumerate(lines, start=1) if ln.strip()), None)
    if header_no is None:
        raise ScaleSimFormatError(path, None, None, "empty file (no header, no layers)")
    header = _fields(lines[header_no - 1])
    if len(header) < 2 or any(_is_int(h) for h in header[1:]):
        raise ScaleSimFormatError(path, header_no, None,
                                  f"missing header: expected '{', '.join(CONV_COLUMNS)},' (or "
                                  f"'{', '.join(GEMM_COLUMNS)},'), got a row of values")
    kind = fmt if fmt != "auto" else ("gemm" if header[1].strip().upper() == "M" else "conv")
    want = CONV_COLUMNS if kind == "conv" else GEMM_COLUMNS
    if len(header) < len(want):
        raise ScaleSimFormatError(path, header_no, want[len(header)],
                                  f"header has {len(header)} fields, a {kind} topology needs {len(want)}: "
                                  f"'{', '.join(want)},'")
    parse_row = _parse_conv_row if kind == "conv" else _parse_gemm_row
    rows = [parse_row(path, i, _fields(ln)) for i, ln in enumerate(lines, start=1) if i > header_no and ln.strip()]
    if not rows:
        raise ScaleSimFormatError(path, header_no, None, "no layers after the header")
    try:  # SCALE-Sim runs a DP row as one layer per channel: that list is what --scalesim-compat builds
        check_limit("layers", sum(r.channels if r.depthwise else 1 for r in rows),
                    "layers SCALE-Sim would simulate (DP rows count one per channel)")
    except LimitError as e:
        raise ScaleSimLimitError(path, None, None, str(e)) from None
    gname = name or (Path(path).stem if path != "<string>" else "scalesim")
    try:
        graph = rows_to_graph(rows, gname, rounding)
    except LimitError as e:  # rows were checked one by one; this is the graph's own check once more
        raise ScaleSimLimitError(path, None, None, f"cannot build the layer graph: {e}") from None
    except GraphError as e:  # e.g. a layer name that collides with another row's '<name>.ifmap' node
        raise ScaleSimFormatError(path, None, None, f"cannot build the layer graph: {e}") from None
    return ScaleSimTopology(path, kind, rows, graph)


def read_topology(path: str | os.PathLike, fmt: str = "auto", rounding: str = "scalesim") -> ScaleSimTopology:
    """Read a SCALE-Sim topology file (see the module docstring); errors are :class:`ScaleSimFormatError`
    (:class:`ScaleSimLimitError` for a file above the ``file_bytes`` limit, refused before it is read)."""
    p = str(Path(path))
    if "\0" in p:
        raise ScaleSimFormatError(repr(p), None, None, "a file name cannot contain a NUL character")
    try:
        data = read_input_file(p, what="SCALE-Sim topology")
    except LimitError as e:
        raise ScaleSimLimitError(p, None, None, str(e).removeprefix(f"{p}: ")) from None
    except HwgenError as e:
        raise ScaleSimFormatError(p, None, None, str(e).removeprefix(f"{p}: ")) from None
    try:
        text = data.decode("utf-8-sig")  # tolerate a BOM from spreadsheet exports
    except UnicodeDecodeError as e:
        raise ScaleSimFormatError(p, None, None, f"not a text (UTF-8) file: {e.reason} at byte {e.start}") from None
    return parse_topology(text, p, fmt, rounding)


def load_scalesim_csv(path: str | os.PathLike, fmt: str = "auto", rounding: str = "scalesim") -> LayerGraph:
    """The layer graph of a SCALE-Sim topology file."""
    return read_topology(path, fmt, rounding).graph


# ---------------------------------------------------------------------- graph
def rows_to_graph(rows: list[ScaleSimLayer], name: str = "scalesim", rounding: str = "scalesim") -> LayerGraph:
    """One ``Input -> layer`` pair per row. ``rounding``: "scalesim" (SCALE-Sim's ceil output size,
    by bottom/right zero padding) or "floor" (no padding at all)."""
    if rounding not in ("scalesim", "floor"):
        raise ValueError(f"rounding must be 'scalesim' or 'floor', got {rounding!r}")
    g = LayerGraph(name)
    used: dict[str, int] = {}
    for r in rows:
        # SCALE-Sim does not require unique names; graph nodes must be unique
        used[r.name] = used.get(r.name, 0) + 1
        node = r.name if used[r.name] == 1 else f"{r.name}#{used[r.name]}"
        if r.gemm is not None:
            m, n, k = r.gemm
            g.add(f"{node}.ifmap", Input(shape=(m, k)))
            g.add(node, Gemm(in_features=k, out_features=n), [f"{node}.ifmap"])
        else:
            sh, sw = r.strides
            pb = pr = 0
            if rounding == "scalesim":
                pb = max(0, (r.ofmap_h - 1) * sh + r.filter_h - r.ifmap_h)
                pr = max(0, (r.ofmap_w - 1) * sw + r.filter_w - r.ifmap_w)
            groups = r.channels if r.depthwise else 1
            out = r.num_filter * groups
            g.add(f"{node}.ifmap", Input(shape=(1, r.channels, r.ifmap_h, r.ifmap_w)))
            g.add(node, Conv2d(in_channels=r.channels, out_channels=out, kernel=(r.filter_h, r.filter_w),
                               stride=(sh, sw), pads=(0, 0, pb, pr), groups=groups), [f"{node}.ifmap"])
        g.outputs.append(node)
    return g.validate()
