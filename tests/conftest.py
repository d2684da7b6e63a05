"""Session-wide test settings: a private hyperzoo cache; a run with conformance tests fails without their data.

Where ``../shared`` is: :mod:`tests.paths` (``from tests.paths import SHARED``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

from tests.paths import missing_conformance_error

# Tests run small operators, where a second thread only adds synchronisation (50x slower on a loaded 2-core machine).
torch.set_num_threads(1)

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Conformance tests never skip: selected without ``shared/conformance`` beside the repository, the run fails."""
    error = missing_conformance_error(session.items)
    if error:
        raise pytest.UsageError(error)


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test run gets its own cache directory (tests never touch ~/.cache/hyperzoo)."""
    path = tmp_path_factory.mktemp("hyperzoo-cache")
    old = os.environ.get("HYPERZOO_CACHE")
    os.environ["HYPERZOO_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("HYPERZOO_CACHE", None)
    else:
        os.environ["HYPERZOO_CACHE"] = old
