"""Test-wide settings: hwgen's record of the files it wrote (hwgen.output_registry) lives in a folder of
the test run, not in the user's ~/.local/state."""

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def hwgen_state(tmp_path_factory):
    os.environ["HWGEN_STATE"] = str(tmp_path_factory.mktemp("hwgen_state"))
    yield os.environ["HWGEN_STATE"]
