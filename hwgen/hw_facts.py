"""Facts of the accelerator RTL that pure-Python code needs without elaborating it.

``hwgen.top`` builds the hardware from these (it imports Amaranth); the fault-site formula
(``fault_injection.sites.model_sites``) and other pure-Python code read them here, so nothing restates
them. The RTL-vs-formula site parity test still compares the two derivations.
"""

__all__ = ["COUNTER_WIDTH", "CONTROLLER_STATES"]

#: Width of the ``cycles`` and ``busy_pe`` performance counters (output ports, valid after ``done``).
COUNTER_WIDTH = 48

#: The controller FSM's states (the first is the reset state); their number sets the state register's width.
CONTROLLER_STATES = ("IDLE", "FETCH", "DECODE", "LOAD", "COMPUTE", "STORE", "HALTED")
