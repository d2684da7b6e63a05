"""Text tables for people (hyperzoo.tables) and the commands that print them."""

from __future__ import annotations

import sys

from hyperzoo.cli import main
from hyperzoo.tables import SECTION, text_table


def test_text_table_aligns_columns_and_draws_section_rules():
    text = text_table(
        ["architecture", "params", "top-1"],
        [["resnet8", "78,042", "10.00"], ["resnet20_laurel_rw", "1", "99.00"], SECTION, ["mean", "39,022", "54.50"]],
        align="lrr",
    )
    lines = text.split("\n")
    assert lines[0].split() == ["architecture", "params", "top-1"]
    assert set(lines[1]) == {"─"} and set(lines[4]) == {"─"}  # under the header, and before the summary row
    assert lines[2].startswith("resnet8 ") and lines[5].startswith("mean ")
    assert len({len(line) for line in lines}) == 1  # right-aligned last column: every line as wide as the rule
    assert lines[3].endswith("99.00") and lines[3].split()[1] == "1"
    assert all(line == line.rstrip() for line in lines) and "\x1b" not in text  # plain text, no colour codes


def test_text_table_title_and_folding():
    text = text_table(["a", "b"], [["x" * 30, "y"]], title="T", width=20)
    lines = text.split("\n")
    assert lines[0] == "T" and all(len(line) <= 20 for line in lines)
    assert "".join(line.split()[0] for line in lines[3:] if line.strip()).startswith("x" * 30)


def test_models_prints_a_table_on_a_terminal_and_lines_in_a_pipe(capsys, monkeypatch):
    assert main(["models", "--family", "wide_resnet", "--params", "wrn16_4"]) == 0
    piped = capsys.readouterr().out
    assert piped.split("\n")[0].split() == ["wrn16_4", "wide_resnet", "2.749M", "params"]  # unchanged for pipes
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["models", "--family", "wide_resnet", "--params", "wrn16_4"]) == 0
    lines = capsys.readouterr().out.strip().split("\n")
    assert lines[0].split() == ["model", "family", "params"] and set(lines[1]) == {"─"}
    assert lines[2].split() == ["wrn16_4", "wide_resnet", "2.749M"]
