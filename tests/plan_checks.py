"""Shared check of the mapper tests: a plan's memory needs are tight."""

import dataclasses

import pytest

from hwgen.isa import IsaError


def assert_needs_tight(cfg, prog, needs) -> None:
    """``prog`` fits ``cfg`` and one word less of any memory (where the config allows it) makes it fail
    its check: ``needs`` (A words, W words, accumulator rows) are exactly what it addresses."""
    for fld, need in zip(("a_spad_depth", "w_spad_depth", "acc_depth"), needs):
        assert need <= getattr(cfg, fld)
        try:
            smaller = dataclasses.replace(cfg, **{fld: need - 1})
        except Exception:  # below the config's own minimum
            continue
        with pytest.raises(IsaError):
            prog.check(smaller)
