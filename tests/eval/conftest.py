"""The same tiny trained run as the serving tests (trained once per session, whichever folder asks first)."""

from __future__ import annotations

import pytest

from tests.serve.conftest import tiny_run


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synthetic_root):
    return tiny_run(tmp_path_factory.getbasetemp(), synthetic_root)
