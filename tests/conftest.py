"""Test-wide settings.

* hwgen's record of the files it wrote (hwgen.output_registry) lives in a folder of the test run, not in the
  user's ~/.local/state.
* The Verilator build cache is where hwgen puts it for the user (``$HWGEN_CACHE``, else
  ``$XDG_CACHE_HOME/hwgen``, else ``~/.cache/hwgen``: never the checkout), pinned in ``HWGEN_CACHE`` when the
  session starts. Every pytest-xdist worker starts from the same environment, so all of them use one folder
  and each configuration is built once per run (the cache's file lock makes the other workers wait for that
  build), and a test that changes HOME or XDG_CACHE_HOME does not move the cache of the builds after it. Tests
  that need a cache of their own pass ``cache_dir`` or set ``HWGEN_CACHE`` themselves.
"""

import os

import pytest

from hwgen.rtlsim import default_cache_dir

os.environ["HWGEN_CACHE"] = str(default_cache_dir())


@pytest.fixture(autouse=True, scope="session")
def hwgen_state(tmp_path_factory):
    os.environ["HWGEN_STATE"] = str(tmp_path_factory.mktemp("hwgen_state"))
    yield os.environ["HWGEN_STATE"]


@pytest.fixture(scope="session")
def qdq_mlp(tmp_path_factory):
    """A quantized MLP (onnxruntime QDQ, int8, per channel) and a matching input, in a folder of their own:
    (model.onnx, x.npy)."""
    import numpy as np

    from mappings.onnx_models import mlp, quantize_qdq, random_inputs, save

    d = tmp_path_factory.mktemp("qdq_mlp")
    fm = mlp(seed=5, features=(8, 6, 5, 4))
    save(fm, d / "f.onnx")
    quantize_qdq(d / "f.onnx", d / "m.onnx", "int8", True, seed=5)
    np.save(d / "x.npy", next(iter(random_inputs(fm, seed=1)[0].values())))
    return d / "m.onnx", d / "x.npy"
