"""Session-wide test settings: a private hyperzoo cache and the location of ../shared."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

# Tests run small operators, where a second thread only adds synchronisation (50x slower on a loaded 2-core machine).
torch.set_num_threads(1)

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


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
