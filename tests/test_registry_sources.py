"""A registry's source modules: imported on the first lookup, once, so a low package never imports their package."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import pytest

from hyperzoo.registry import Registry

SOURCE = """
import time
from {registry_module} import REG
time.sleep({delay})
REG.add("{name}", lambda: "{name}", family="plugin")
assert "{name}" in REG  # a lookup while the sources are imported sees what is registered so far
"""


def _plugin(tmp_path: Path, module: str, name: str, delay: float = 0.0) -> str:
    (tmp_path / f"{module}.py").write_text(SOURCE.format(registry_module="_reg_home", name=name, delay=delay))
    return module


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith(("_reg_home", "_reg_plugin"))]:
        del sys.modules[name]


def _make_home(tmp_path: Path, sources: list[str]) -> Registry:
    (tmp_path / "_reg_home.py").write_text(
        textwrap.dedent(f"""
        from hyperzoo.registry import Registry
        REG = Registry("widget", sources={sources!r})
        REG.add("own", lambda: "own")
        """)
    )
    import _reg_home  # type: ignore[import-not-found]

    return _reg_home.REG


def test_sources_are_imported_on_the_first_lookup_only(home):
    reg = _make_home(home, [_plugin(home, "_reg_plugin_a", "alpha"), _plugin(home, "_reg_plugin_b", "beta")])
    assert "_reg_plugin_a" not in sys.modules  # building the registry imports nothing
    assert reg.names() == ["alpha", "beta", "own"]
    assert "_reg_plugin_a" in sys.modules and reg.get("beta")() == "beta" and len(reg) == 3


def test_a_failing_source_is_an_error_and_is_retried(home):
    (home / "_reg_plugin_bad.py").write_text("raise ImportError('broken plugin')\n")
    reg = _make_home(home, ["_reg_plugin_bad"])
    with pytest.raises(ImportError, match="broken plugin"):
        reg.get("own")
    (home / "_reg_plugin_bad.py").write_text(SOURCE.format(registry_module="_reg_home", name="fixed", delay=0))
    sys.modules.pop("_reg_plugin_bad", None)
    import importlib

    importlib.invalidate_caches()
    assert reg.names() == ["fixed", "own"]


def test_other_threads_wait_for_the_sources(home):
    reg = _make_home(home, [_plugin(home, "_reg_plugin_slow", "slow", delay=0.5)])
    seen: list[list[str]] = []
    threads = [threading.Thread(target=lambda: seen.append(reg.names())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [["own", "slow"]] * 4
