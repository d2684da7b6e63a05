import pytest

from hyperzoo.cli import build_parser, main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for cmd in ("fit", "validate", "test", "models", "demo", "data", "graphs"):
        assert cmd in out


def test_models_lists_and_filters(capsys):
    assert main(["models", "resnet2*"]) == 0
    out = capsys.readouterr().out.split()
    assert "resnet20" in out and "resnet18" not in out
    assert main(["models", "--family", "wide_resnet", "--params", "wrn16_4"]) == 0
    assert "2.749M" in capsys.readouterr().out


def test_models_no_match_is_one_line(capsys):
    assert main(["models", "nothing*"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hyperzoo: error: no model matches 'nothing*'; try `hyperzoo models` to list them all"


def test_data_prepare_bad_root_is_one_line(capsys, tmp_path):
    bad = tmp_path / "not-a-dataset.tar.gz"
    bad.write_bytes(b"\x1f\x8b garbage")
    assert main(["data", "prepare", "--dataset", "cifar10", "--root", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "not-a-dataset.tar.gz" in err


def test_data_prepare_sample(capsys):
    assert main(["data", "prepare", "--dataset", "cifar10", "--root", "sample"]) == 0
    assert "10 classes" in capsys.readouterr().out


def test_demo_runs_on_the_sample(capsys, monkeypatch):
    """`make demo` with the shipped checkpoint: ResNet-50 predicted in one pass, evaluated on the sample."""
    from hyperzoo.demo import run_demo

    monkeypatch.setenv("HYPERZOO_PROGRESS", "1")  # the stage lines a terminal shows

    result = run_demo(limit=200)
    assert result["num_images"] == 200 and result["params"] > 23e6
    assert 0.0 <= result["random_init_acc"] <= 1.0 and 0.0 <= result["predicted_acc"] <= 1.0
    assert result["predicted_acc"] > result["random_init_acc"]  # the shipped GHN beats random initialisation
    captured = capsys.readouterr()
    assert "GHN-predicted" in captured.out and "random init" in captured.out
    # says which shipped GHN and why (the cards' ResNet-50 numbers)
    assert "hyperzoo demo: using 'ghn2-cifar10-resnets', the better shipped GHN on ResNet-50" in captured.out
    assert "ghn2-cifar10 21.5%" in captured.out and "ghn2-cifar10-resnets 24.9%" in captured.out
    for stage in ("loading torch and the GHN", "resnet50: predicting parameters", "resnet50: evaluating the predicted"):
        assert f"hyperzoo demo: {stage}" in captured.err


def test_parser_builds():
    assert build_parser().prog == "hyperzoo"
