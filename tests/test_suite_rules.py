"""Rules of the test suite itself: one place for ``../shared``, conformance tests marked and never skipped."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.paths import CONFORMANCE, REPO, missing_conformance_error

TESTS = REPO / "tests"


class _Item:
    """The two attributes of a collected test that the conformance check reads."""

    def __init__(self, nodeid: str, conformance: bool) -> None:
        self.nodeid = nodeid
        self._conformance = conformance

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "conformance" and self._conformance else None


def _test_sources() -> dict[str, str]:
    """Every test module and conftest except this one and ``tests/paths.py``."""
    skip = {"paths.py", Path(__file__).name}
    return {str(p.relative_to(REPO)): p.read_text() for p in sorted(TESTS.rglob("*.py")) if p.name not in skip}


def test_missing_conformance_data_is_an_error_naming_the_folder_and_the_opt_out(tmp_path: Path):
    items = [_Item("tests/a.py::test_plain", False), _Item("tests/b.py::test_golden", True)]
    error = missing_conformance_error(items, tmp_path / "conformance")  # type: ignore[arg-type]
    assert error is not None
    assert str(tmp_path / "conformance") in error and "tests/b.py::test_golden" in error
    assert '-m "not conformance"' in error


def test_no_error_when_the_data_is_there_or_no_conformance_test_is_selected(tmp_path: Path):
    items = [_Item("tests/b.py::test_golden", True)]
    assert missing_conformance_error(items, tmp_path) is None  # tmp_path exists
    assert missing_conformance_error([_Item("tests/a.py::t", False)], tmp_path / "absent") is None  # type: ignore[list-item]
    assert CONFORMANCE.name == "conformance" and CONFORMANCE.parent.name == "shared"


def test_only_tests_paths_says_where_shared_is():
    recomputed = [f for f, text in _test_sources().items() if re.search(r"""/\s*["']shared["']""", text)]
    assert recomputed == [], f"use `from tests.paths import SHARED` instead in {recomputed}"


def test_modules_reading_conformance_data_carry_the_marker_and_do_not_skip():
    reads_shared = re.compile(r"from tests\.paths import [^\n]*\b(CONFORMANCE|SHARED)\b(?!_)")
    for name, text in _test_sources().items():
        if not Path(name).name.startswith("test_") or not reads_shared.search(text):
            continue
        assert "pytest.mark.conformance" in text, f"{name} reads shared/ but has no conformance marker"
        assert not re.search(r"skip\w*\([^)]*(CONFORMANCE|shared|conformance)", text, re.S), name


def test_ci_stops_without_the_conformance_data(tmp_path: Path):
    """``.ci/run`` exits non-zero, naming the folder, before installing anything when ``../shared`` is absent."""
    ci = tmp_path / "repo" / ".ci" / "run"
    ci.parent.mkdir(parents=True)
    ci.write_text((REPO / ".ci" / "run").read_text())
    done = subprocess.run(["bash", str(ci)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{tmp_path}/shared/conformance is missing" in done.stderr and "not conformance" in done.stderr
