"""The error base class every expected failure derives from.

The command line catches :class:`HwgenError` (and only it, besides OS errors and
memory exhaustion) as a user-facing failure: one line, exit status 2. Anything
else that escapes is a defect in hwgen and is reported as one. Each package's
own error classes (``ConfigError``, ``OnnxImportError``, ``CampaignError`` ...)
derive from ``HwgenError`` and, where callers already catch it, from
``ValueError`` too.
"""

__all__ = ["HwgenError", "LimitError"]


class HwgenError(Exception):
    """Bad input or an unmet precondition: the message names the file, field or node and the limit."""


class LimitError(HwgenError, ValueError):
    """A declared size (shape, element count, memory, run length) above a stated limit (see hwgen.limits)."""
