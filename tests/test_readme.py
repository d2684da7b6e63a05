"""The README's examples: Python blocks run as written, every `hyperzoo ...` command line parses.

Fences: ``python`` blocks run (in order, sharing one namespace); a ``py`` block is Python the test does not run, and
the paragraph before it says why; ``bash`` blocks hold shell commands, and each ``hyperzoo`` line among them is
parsed by the command's own parser (LightningCLI for ``fit``/``validate``/``test``, which prints the resolved
config and stops); ``yaml`` blocks are config fragments: valid YAML whose every ``class_path`` imports; a fence
without a language is plain text (the layout tree).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex

import pytest
import yaml

from hyperzoo.cli import LIGHTNING, build_parser, main
from tests.paths import REPO

README = REPO / "README.md"
FENCE = re.compile(r"```(\w*)\n(.*?)```", flags=re.S)
LANGUAGES = {"python", "py", "bash", "yaml", ""}


def _blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def _hyperzoo_commands() -> list[str]:
    """Every ``hyperzoo ...`` line of the bash blocks, continuation lines joined."""
    lines = "\n".join(_blocks("bash")).replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip().startswith("hyperzoo ")]


def _argv(command: str) -> list[str]:
    """The arguments after ``hyperzoo``; comments dropped, an optional ``[--flag]`` given."""
    return [token.strip("[]") if token.startswith("[") else token for token in shlex.split(command, comments=True)][1:]


def _lenient(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser without the checks that input paths exist (the examples name files a user has, not the test)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _lenient(sub)
        elif getattr(action.type, "__name__", "").startswith(("existing", "_data_root")):
            action.type = None
    return parser


def test_readme_python_examples_run(capsys):
    blocks = _blocks("python")
    assert len(blocks) >= 3
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "torch.Size([2, 10])" in out
    assert namespace["x"].shape == (64, 3, 32, 32) and namespace["graph"].num_nodes == 126


def _check_class_paths(node: object) -> None:
    """Every ``class_path`` in a YAML fragment names an importable class."""
    if isinstance(node, dict):
        if "class_path" in node:
            module, _, name = str(node["class_path"]).rpartition(".")
            assert hasattr(importlib.import_module(module), name), f"README yaml: no {node['class_path']}"
        for value in node.values():
            _check_class_paths(value)
    elif isinstance(node, list):
        for value in node:
            _check_class_paths(value)


def test_every_block_runs_parses_or_says_why_not():
    text = README.read_text()
    for match in FENCE.finditer(text):
        lang, body = match.group(1), match.group(2)
        assert lang in LANGUAGES, f"README block with language {lang!r}: use python (run), py (not run), bash or yaml"
        if lang == "yaml":
            _check_class_paths(yaml.safe_load(body))
        if lang == "py":  # not run: the paragraph before the block gives the reason
            before = text[: match.start()].rstrip().rsplit("\n\n", 1)[-1]
            assert "README test does not run it" in before, f"say why this block is not run:\n{body}"
        if lang == "":
            assert not re.search(r"^\s*(hyperzoo |import |from \w+ import)", body, flags=re.M), body


def test_shell_examples_cover_the_commands():
    commands = {_argv(c)[0] for c in _hyperzoo_commands()}
    assert {"fit", "models", "predict", "eval-ghn", "graphs", "ghns", "zoo", "merge", "stitch", "smash"} <= commands


@pytest.mark.filterwarnings("ignore:LightningCLI's args parameter is intended")  # pytest's own argv is there
@pytest.mark.parametrize(
    "command", _hyperzoo_commands(), ids=lambda c: "-".join(t for t in _argv(c)[:2] if not t.startswith("-"))
)
def test_shell_example_parses(command: str, capsys):
    argv = _argv(command)
    if argv[0] in LIGHTNING:
        with pytest.raises(SystemExit) as info, contextlib.redirect_stdout(io.StringIO()):
            main([*argv, "--print_config"])  # parses, resolves the config files, prints and exits
        assert info.value.code == 0, capsys.readouterr().err
        return
    try:
        args = _lenient(build_parser()).parse_args(argv)
    except SystemExit:
        pytest.fail(f"`{command}` does not parse: {capsys.readouterr().err}")
    assert callable(getattr(args, "func", None)), f"`{command}` names no command"
