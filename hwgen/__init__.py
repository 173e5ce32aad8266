"""hwgen: systolic accelerator generator with a cycle-exact model.

Pure-Python parts (config, ISA, program) import no Amaranth; the hardware
components live in submodules that do (pe, array, top, harness).
"""

from .config import AcceleratorConfig, ConfigError

__all__ = ["AcceleratorConfig", "ConfigError"]
__version__ = "0.1.0"
