"""Where the tests find the repository and the shared reference data (``../shared``, beside the repository).

One place for these paths: test modules import the constants (``from tests.paths import CONFORMANCE``); nothing
else in ``tests/`` computes where ``../shared`` is (``tests/test_suite_rules.py`` checks it).

Tests that read ``shared/conformance`` carry the ``conformance`` marker; they never skip when the data is missing:
``tests/conftest.py`` stops the run with an error instead (deselect them with ``-m "not conformance"``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

__all__ = ["CONFORMANCE", "REPO", "SHARED", "SHARED_CIFAR10", "missing_conformance_error"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"
SHARED_CIFAR10 = SHARED / "data" / "cifar10-jpeg.tar.gz"


def missing_conformance_error(items: Iterable[pytest.Item], conformance: Path = CONFORMANCE) -> str | None:
    """The error for a run that selected conformance tests while ``conformance`` does not exist; else ``None``."""
    if conformance.is_dir():
        return None
    selected = [item.nodeid for item in items if item.get_closest_marker("conformance")]
    if not selected:
        return None
    return (
        f"{len(selected)} selected conformance tests (first: {selected[0]}) need the reference data in "
        f"{conformance}, which does not exist. Put the shared folder beside the repository (../shared), or "
        f'deselect these tests with -m "not conformance" (then nothing checks GHN-2/GHN-3 conformance).'
    )
