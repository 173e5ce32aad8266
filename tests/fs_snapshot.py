"""A folder's whole state, to assert that a command touched nothing it should not have."""

import os
import stat
from pathlib import Path

__all__ = ["snapshot"]


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``, links not followed: relative path -> (kind, contents or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", p.read_bytes())
            else:
                out[rel] = ("dir",) if stat.S_ISDIR(st.st_mode) else ("special",)
    return out
