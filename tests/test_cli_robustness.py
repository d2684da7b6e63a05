"""The ``hyperzoo`` command at its boundary: bad inputs, lazy imports, help texts, worker processes, progress."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hyperzoo import cli_types
from hyperzoo.cli import COMMAND_MODULES, build_parser, main

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
HEAVY = ("torch", "torchvision", "lightning", "torch_geometric", "numpy", "h5py", "scipy")

# (argv, what the one-line usage error must say): values that were accepted before and did nothing sensible,
# or failed later with a traceback
BAD_INPUTS = [
    (["smash", "sample", "--num", "-1"], "argument --num: must be a positive integer"),
    (["smash", "sample", "--num", "x"], "argument --num: must be an integer, got 'x'"),
    (["graphs", "generate", "--split", "val", "--num", "3", "--out", "o.h5", "--workers", "-1"], "--workers"),
    (["graphs", "generate", "--split", "val", "--num", "0", "--out", "o.h5"], "argument --num"),
    (["graphs", "generate", "--split", "val", "--num", "3", "--out", "o.h5", "--part-size", "0"], "--part-size"),
    (["graphs", "generate", "--split", "val", "--num", "3", "--out", "o.h5", "--s-max", "0"], "--s-max"),
    (["graphs", "generate", "--split", "val", "--num", "3", "--out", "o.h5", "--max-cells", "-2"], "--max-cells"),
    (["graphs", "generate", "--split", "vall", "--num", "3", "--out", "o.h5"], "invalid choice: 'vall'"),
    (["graphs", "info", "resnet20", "--input-size", "-3"], "argument --input-size"),
    (["graphs", "info", "resnet20", "--num-classes", "0"], "argument --num-classes"),
    (["graphs", "info", "resnet20", "--s-max", "0"], "argument --s-max"),
    (["models", "--family", "resnets"], "invalid choice: 'resnets'"),
    (["demo", "--limit", "0"], "argument --limit"),
    (["demo", "--data-root", "no/such/folder"], "argument --data-root: no such file or directory"),
    (["eval-ghn", "--ghn", "g", "--models", "resnet8", "--batch-size", "0"], "argument --batch-size"),
    (["eval-ghn", "--ghn", "g", "--models", "resnet8", "--limit-images", "-5"], "argument --limit-images"),
    (["eval-ghn", "--ghn", "g", "--models", "resnet8", "--limit-archs", "0"], "argument --limit-archs"),
    (["predict", "resnet8", "--ghn", "g", "--out", "o.safetensors", "--input-size", "0"], "argument --input-size"),
    (["predict", "resnet8", "--ghn", "g", "--out", "o.safetensors", "--num-classes", "-1"], "--num-classes"),
    (["smash", "rank", "--checkpoint", "c", "--data-root", "sample", "--num-archs", "2"], "must be at least 3"),
    (["smash", "rank", "--checkpoint", "c", "--data-root", "sample", "--lr", "-0.1"], "argument --lr"),
    (["smash", "rank", "--checkpoint", "c", "--data-root", "sample", "--lr", "nan"], "must be a finite number"),
    (["smash", "rank", "--checkpoint", "c", "--data-root", "sample", "--threads", "-1"], "argument --threads"),
    (["smash", "rank", "--checkpoint", "c", "--data-root", "sample", "--bootstrap", "0"], "argument --bootstrap"),
    (["merge", "a", "b", "--width", "3"], "argument --width: must be a number in [1, 2]"),
    (["merge", "a", "b", "--batches", "0"], "argument --batches"),
    (["merge", "a", "b", "--ridge", "-1"], "argument --ridge"),
    (["merge", "a", "b", "--test-limit", "0"], "argument --test-limit"),
    (["merge", "a", "b", "--method", "median"], "invalid choice: 'median'"),
    (["zoo", "add", "x", "--model", "resnet18", "--weights", "no-such.safetensors"], "argument --weights"),
    (["zoo", "add", "x", "--model", "resnet18", "--weights", "README.md", "--num-classes", "0"], "--num-classes"),
    (["zoo", "train", "--config", "no-such.yaml"], "argument --config: no such file"),
    (["stitch", "fit", "--config", "no-such.yaml"], "argument --config: no such file"),
    (["stitch", "fit", "--config", "README.md", "--epochs", "nan"], "argument --epochs: must be a finite number"),
    (["stitch", "select", "--table", "no-such.json", "--budget-flops", "1e9"], "argument --table: no such file"),
    (["stitch", "select", "--table", "README.md", "--budget-flops", "-1"], "argument --budget-flops"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_INPUTS, ids=[" ".join(a[:2]) + " " + m for a, m in BAD_INPUTS])
def test_bad_option_values_are_one_usage_error(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"hyperzoo {argv[0]}")  # usage line, then one error line


def _exit_code(argv: list[str]) -> int | str | None:
    """``main(argv)``'s status: bad values return 2, other usage errors (bad choices) exit 2 as argparse does."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for argv in (
        ["graphs", "draw", "resnet20", "-o", str(blocker / "g.png")],
        ["predict", "resnet8", "--ghn", "g", "--out", str(tmp_path)],
        ["smash", "rank", "--checkpoint", "c", "--data-root", "sample", "--out", str(blocker / "r.json")],
        ["eval-ghn", "--ghn", "g", "--models", "resnet8", "--json", str(tmp_path) + "/"],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert ("is a file, not a folder" in err or "is a directory" in err) and "Traceback" not in err


def test_types_accept_good_values(tmp_path):
    assert cli_types.positive_int("3") == 3 and cli_types.nonnegative_int("0") == 0
    assert cli_types.positive_float("1e-3") == 1e-3 and cli_types.unit_float("1") == 1.0
    assert cli_types.float_range(1, 2)("1.25") == 1.25 and cli_types.int_at_least(3)("3") == 3
    assert cli_types.new_file(str(tmp_path / "new" / "deeper" / "x.h5")).endswith("x.h5")  # folders made later
    assert cli_types.existing_file(str(REPO / "README.md")) and cli_types.existing_dir(str(tmp_path))
    bad_values = [("0", cli_types.positive_int), ("-1", cli_types.nonnegative_int), ("inf", cli_types.finite_float),
                  ("1.5", cli_types.unit_float), (str(REPO), cli_types.existing_file),
                  (str(REPO / "README.md"), cli_types.existing_dir)]  # fmt: skip
    for bad, parse in bad_values:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_library_errors_and_os_errors_are_one_line(capsys, monkeypatch):
    assert main(["graphs", "info", "resnet2O"]) == 2  # UnknownNameError, with suggestions
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyperzoo: error: ") and "resnet20" in err and "\n" not in err

    import hyperzoo.cli as cli

    def denied(args):
        raise PermissionError(13, "Permission denied", "/data/zoo/a.safetensors")

    monkeypatch.setattr(cli, "_cmd_models", denied)
    assert main(["models"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyperzoo: error: Permission denied: /data/zoo/a.safetensors") and "\n" not in err


# ---------------------------------------------------------------------------------------------- lazy imports
def test_parser_and_every_help_build_without_torch():
    """`hyperzoo --help` and each subcommand's help: no torch, torchvision, Lightning (nor numpy) imported."""
    code = (
        "import sys, argparse\n"
        "import hyperzoo, hyperzoo.cli as c\n"
        "def walk(p):\n"
        "    p.format_help()\n"
        "    for a in p._actions:\n"
        "        if isinstance(a, argparse._SubParsersAction):\n"
        "            for sub in a.choices.values(): walk(sub)\n"
        "walk(c.build_parser())\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"building the parser imported {done.stdout.strip()}"


def test_lazy_packages_keep_every_public_name():
    import importlib

    import hyperzoo

    for name in hyperzoo.__all__:
        assert getattr(hyperzoo, name) is not None, name
    assert hyperzoo.nets.create_model is hyperzoo.create_model  # submodules as attributes, as before
    for package in ("graphs", "ghn", "smash", "zoo", "merge", "stitch"):
        module = importlib.import_module(f"hyperzoo.{package}")
        for name in module.__all__:
            assert getattr(module, name) is not None, f"hyperzoo.{package}.{name}"
        assert set(module.__all__) <= set(dir(module))
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            module.nope  # noqa: B018
    from hyperzoo.zoo import load_zoo_model
    from hyperzoo.zoo.store import load_model

    assert load_zoo_model is load_model and hyperzoo.load_zoo_model is load_model


def test_light_tables_match_the_registries():
    from hyperzoo.graphs.arch_graph import DEFAULT_S_MAX
    from hyperzoo.graphs.generate_cli import _DEFAULT_S_MAX
    from hyperzoo.merge.baselines import METHODS
    from hyperzoo.nets import MODELS
    from hyperzoo.nets.deepnets1m import SPLITS

    assert tuple(SPLITS) == cli_types.DEEPNETS1M_SPLITS
    assert tuple(METHODS) == cli_types.MERGE_METHODS
    assert set(cli_types.MODEL_FAMILIES) == {MODELS.entry(n).family for n in MODELS.names("*")}
    assert _DEFAULT_S_MAX == DEFAULT_S_MAX


def test_help_lists_every_subcommand():
    """A command's one-line help names each of its actions (graphs: info, draw, generate; ...)."""
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in top._choices_actions}
    assert set(helps) == set(top.choices)
    checked = 0
    for name, sub in top.choices.items():
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                checked += 1
                missing = [a for a in action.choices if a not in helps[name]]
                assert not missing, f"`hyperzoo --help` line of {name} does not name {missing}"
    assert checked >= 5
    assert len(COMMAND_MODULES) == len(set(COMMAND_MODULES))


# ---------------------------------------------------------------------------------------------- processes
def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_generate(out: Path, **popen: object) -> tuple[subprocess.Popen, list[int]]:
    cmd = [sys.executable, "-m", "hyperzoo.cli", "graphs", "generate", "--split", "train", "--num", "100000",
           "--out", str(out), "--workers", "2", "--max-cells", "1", "--part-size", "2", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        workers = [p for p in _children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        if len(workers) >= 2:
            time.sleep(1.0)  # let them start (and arm their parent watch)
            return proc, _children(proc.pid)
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no workers appeared: {proc.communicate()}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_sigkill_of_generate_leaves_no_worker_behind(tmp_path):
    proc, children = _start_generate(tmp_path / "g.h5")
    assert len(children) >= 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in children if _alive(p)]
    for p in left:  # do not leave them to the next test
        os.kill(p, signal.SIGKILL)
    assert not left, f"{len(left)} worker process(es) outlived the killed parent"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_ctrl_c_of_generate_is_one_line_and_resumable(tmp_path):
    out = tmp_path / "g.h5"
    proc, children = _start_generate(out, start_new_session=True)
    parts = out.with_name(out.name + ".parts")
    deadline = time.monotonic() + 120
    while not list(parts.glob("part-*.h5")) and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    _, raw = proc.communicate(timeout=120)
    err = raw.decode()
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "hyperzoo: interrupted", err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "Exception ignored" not in err, err
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)]
    assert list(parts.glob("part-*.h5")) and not out.exists()  # the finished parts are kept for the rerun


def test_generate_onto_a_complete_larger_store_says_so(tmp_path, capsys):
    out = tmp_path / "train.h5"
    args = ["graphs", "generate", "--split", "train", "--out", str(out), "--max-cells", "1", "--no-progress"]
    assert main([*args, "--num", "4"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main([*args, "--num", "2"]) == 0
    said = capsys.readouterr().out
    assert "already holds 4 train graphs" in said and "2 more than --num 2" in said and "wrote" not in said
    assert main([*args, "--num", "4"]) == 0
    said = capsys.readouterr().out
    assert "already holds 4" in said and "more than" not in said


# ---------------------------------------------------------------------------------------------- progress
def test_stage_lines_show_on_request_only(capsys, monkeypatch):
    from hyperzoo.progress import Stages, stage

    stage("quiet under pytest")  # stderr is not a terminal
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("HYPERZOO_PROGRESS", "1")
    say = Stages("hyperzoo test")
    say("loading")
    assert capsys.readouterr().err == "hyperzoo test: loading\n"
    monkeypatch.setenv("HYPERZOO_QUIET", "1")
    say("hidden")
    assert capsys.readouterr().err == ""


def test_eval_ghn_names_each_stage(capsys, monkeypatch):
    monkeypatch.setenv("HYPERZOO_PROGRESS", "1")
    args = ["eval-ghn", "--ghn", "ghn2-cifar10", "--models", "resnet20", "--limit-images", "64", "--device", "cpu"]
    assert main(args) == 0
    err = capsys.readouterr().err
    stages = ["loading the GHN", "loading the test images", "resnet20: tracing the graph",
              "resnet20: predicting parameters", "resnet20: evaluating the predicted network on 64 images"]  # fmt: skip
    for stage in stages:
        assert f"hyperzoo eval-ghn: {stage}" in err


def test_archive_extraction_says_so(tmp_path, capsys, monkeypatch):
    import tarfile

    from PIL import Image

    from hyperzoo.data.sources import extract_archive

    tree = tmp_path / "tree"
    for split in ("train", "test"):
        (tree / split / "a").mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tree / split / "a" / "0.png")
    archive = tmp_path / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=".")
    monkeypatch.setenv("HYPERZOO_PROGRESS", "1")
    extracted = extract_archive(archive, tmp_path / "cache")
    assert (extracted / "train" / "a" / "0.png").is_file()
    assert f"hyperzoo: unpacking {archive}" in capsys.readouterr().err
    extract_archive(archive, tmp_path / "cache")  # once only
    assert "unpacking" not in capsys.readouterr().err


def test_smash_rank_reports_once(tmp_path, capsys):
    from hyperzoo.smash.model import SMASH, save_smash

    ckpt = save_smash(SMASH(hypernet={"width": 8, "growth": 4, "depth": 1}), tmp_path / "smash.safetensors")
    code = main([
        "smash", "rank", "--checkpoint", str(ckpt), "--data-root", "sample", "--num-archs", "3", "--num-train", "3",
        "--train-steps", "1", "--batch-size", "8", "--val-size", "100", "--holdout", "30", "--bootstrap", "10",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("Spearman") == 1 and "% bootstrap CI" in out
