import json
import sys
import types

import pytest

from hyperzoo.cli import main


def test_info_text(capsys):
    assert main(["graphs", "info", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "nodes" in out and "ops:" in out and "unmapped     0" in out


def test_info_json_keys_and_conformance_layout(capsys):
    assert main(["graphs", "info", "resnet18", "--adapt-cifar", "--num-classes", "10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data) == ["num_nodes", "nodes", "param_names", "edges"]
    assert data["num_nodes"] == 52 == len(data["nodes"]) == len(data["param_names"])
    assert data["nodes"][0] == "input" and data["param_names"][-1] == "fc.bias"
    assert all(len(e) == 3 and 1 <= e[2] <= 50 for e in data["edges"])


def test_info_s_max_and_input_size(capsys):
    assert main(["graphs", "info", "resnet20", "--input-size", "16", "--s-max", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {e[2] for e in data["edges"]} == {1}


def test_draw_writes_png(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["graphs", "draw", "resnet20", "-o", str(out), "--labels"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["graphs", "info", "resnet2O"], "unknown model"),
        (["graphs", "info", "missing.onnx"], "not found"),
        (["graphs", "info", "resnet20", "--input-size", "0"], "positive"),
        (["graphs", "draw", "resnet20", "-o", "g.txt"], ".png"),
    ],
)
def test_user_errors_print_one_line(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_onnx_paths_dispatch_to_the_onnx_reader(tmp_path, monkeypatch, capsys):
    from hyperzoo.graphs import ArchGraph

    path = tmp_path / "net.onnx"
    path.write_bytes(b"")
    fake = types.ModuleType("hyperzoo.graphs.onnx")
    seen = []

    def graph_from_onnx(model):
        seen.append(model)
        return ArchGraph.from_dag(["input", "conv"], ["", "w"], [None, (4, 3, 3, 3)], [(0, 1)], name="net")

    fake.graph_from_onnx = graph_from_onnx
    monkeypatch.setitem(sys.modules, "hyperzoo.graphs.onnx", fake)
    assert main(["graphs", "info", str(path), "--json"]) == 0
    assert seen == [str(path)]
    assert json.loads(capsys.readouterr().out)["nodes"] == ["input", "conv"]
