"""The accelerator's units: each a ``wiring.Component`` of its own module, instantiated by
:class:`hwgen.top.Accelerator` (which keeps the memories, the quantization table and the array, state
that several units share, and does the wiring).

* :mod:`.controller` (submodule ``ctrl``): fetch, decode, the execute counter, performance counters;
  hands each decoded instruction to its unit;
* :mod:`.load` (``load``): host-memory gathers into the scratchpads and the quantization table;
* :mod:`.compute` (``compute``): scratchpad reads feeding the systolic array, the array's controls and
  the accumulator-buffer write-back;
* :mod:`.store` (``store``): accumulator rows out through the requantizer (whose parameters the config
  instruction sets) to host memory;
* :mod:`.common`: the interfaces they share (the instruction layout, the controller-to-unit port) and
  the register-table helper.

Why these cuts: they are the units a later generation decouples with queues (Gemmini's load, execute
and store controllers). Every unit receives its instruction as an ``amaranth.lib.stream`` payload
(valid/ready) and reports ``done``, so a ``stream`` FIFO can later sit between the controller and it;
see :data:`.common.UNIT_PORT` for what this generation still shares.

No ``from __future__ import annotations`` in these modules: ``wiring.Component`` and ``data`` layouts
read real annotations.
"""
