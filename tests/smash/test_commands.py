import json

from hyperzoo.cli import main
from hyperzoo.smash.model import SMASH, save_smash
from hyperzoo.smash.space import Architecture, SMASHSpace


def test_smash_sample_prints_valid_architectures(capsys):
    assert main(["smash", "sample", "--num", "2", "--seed", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        SMASHSpace().validate(Architecture.from_dict(json.loads(line)))


def test_smash_rank_on_the_sample(tmp_path, capsys):
    ckpt = save_smash(SMASH(hypernet={"width": 8, "growth": 4, "depth": 1}), tmp_path / "smash.safetensors")
    out = tmp_path / "rank.json"
    code = main([
        "smash", "rank", "--checkpoint", str(ckpt), "--data-root", "sample", "--num-archs", "4", "--num-train", "3",
        "--train-steps", "1", "--batch-size", "8", "--val-size", "100", "--holdout", "40", "--bootstrap", "20",
        "--out", str(out), "--plot", str(tmp_path / "rank.png"),
    ])  # fmt: skip
    assert code == 0
    assert "Spearman" in capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["num_archs"] == 4 and result["holdout_images"] == 40
    assert (tmp_path / "rank.png").stat().st_size > 0


def test_smash_rank_bad_checkpoint(tmp_path, capsys):
    code = main(["smash", "rank", "--checkpoint", str(tmp_path / "x.safetensors"), "--data-root", "sample"])
    assert code == 2
    assert "SMASH checkpoint" in capsys.readouterr().err
