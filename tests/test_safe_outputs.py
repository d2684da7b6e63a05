"""Bad-input suite for outputs and integrity: no silent overwrite, parent folders, atomic writes, merged entries
that load at their real widths, checksums on graph stores and zoo entries, non-finite weights and predictions.

Each test names the case it covers; every failing case must end in a one-line ``hyperzoo: error:`` (exit 2) or a
:class:`~hyperzoo.errors.HyperzooError` naming the file and what to do.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hyperzoo.cli import main
from hyperzoo.errors import ConfigError, DataError, HyperzooError
from hyperzoo.io import atomic_write, check_output, write_text_atomic
from hyperzoo.nets import create_model
from hyperzoo.zoo.store import add_external, load_meta, load_model, save_model

REPO = Path(__file__).resolve().parents[1]
VAL_STORE = REPO / "graphs" / "val.h5"


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("hyperzoo: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _option_error(capsys: pytest.CaptureFixture[str], option: str) -> str:
    """An option refused while parsing: argparse's usage, then one ``error: argument OPTION: ...`` line."""
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert f"error: argument {option}" in last and "Traceback" not in err, err
    return last


@pytest.fixture(scope="module")
def ghn_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hyperzoo.ghn import create_ghn, save_ghn

    torch.manual_seed(0)
    return save_ghn(create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)), tmp_path_factory.mktemp("ghn") / "g")


# ------------------------------------------------------------------------------------------------ the helpers
def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "x.json"  # missing folders are created
    write_text_atomic(path, "old")
    with pytest.raises(RuntimeError), atomic_write(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]  # no temporary left behind
    write_text_atomic(path, "new")
    assert path.read_text() == "new" and oct(path.stat().st_mode & 0o777) != "0o600"


def test_check_output_cases(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"--out .*file already exists; pass --overwrite"):
        check_output(tmp_path / "file", option="--out")
    assert check_output(tmp_path / "file", overwrite=True) == tmp_path / "file"
    with pytest.raises(ConfigError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(ConfigError, match=r"file is a file, not a folder"):
        check_output(tmp_path / "file" / "sub" / "out.png", option="-o")
    check_output(tmp_path / "new" / "dir" / "out.png")
    assert (tmp_path / "new" / "dir").is_dir()


# ------------------------------------------------------------------------------------------------ commands
def test_predict_refuses_to_overwrite_and_creates_folders(ghn_ckpt: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine.safetensors"
    out.write_bytes(b"precious")
    args = ["predict", "resnet8", "--ghn", str(ghn_ckpt), "--out", str(out)]
    assert main(args) == 2
    assert str(out) in (err := _error(capsys)) and "--overwrite" in err
    assert out.read_bytes() == b"precious"
    assert main([*args, "--overwrite"]) == 0 and out.stat().st_size > 1000
    deep = tmp_path / "not" / "yet" / "there.safetensors"
    assert main(["predict", "resnet8", "--ghn", str(ghn_ckpt), "--out", str(deep)]) == 0 and deep.is_file()
    capsys.readouterr()
    assert main(["predict", "resnet8", "--ghn", str(ghn_ckpt), "--out", str(out / "x.safetensors")]) == 2
    assert "is a file, not a folder" in _option_error(capsys, "--out")


def test_draw_refuses_to_overwrite_and_creates_folders(tmp_path: Path, capsys) -> None:
    out = tmp_path / "g.png"
    out.write_bytes(b"precious")
    assert main(["graphs", "draw", "resnet8", "-o", str(out)]) == 2
    assert "--overwrite" in _error(capsys) and out.read_bytes() == b"precious"
    deep = tmp_path / "new" / "g.svg"
    assert main(["graphs", "draw", "resnet8", "-o", str(deep)]) == 0 and deep.stat().st_size > 0
    assert main(["graphs", "draw", "resnet8", "-o", str(out), "--overwrite"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["graphs", "draw", "resnet8", "-o", str(out / "g.png")]) == 2
    assert "not a folder" in _option_error(capsys, "-o/--output")


def test_other_writers_check_before_the_work(ghn_ckpt: Path, tmp_path: Path, capsys) -> None:
    """eval-ghn --json, smash rank --out/--plot, stitch fit --out fail at once (before loading or training)."""
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    assert main(["eval-ghn", "--ghn", str(ghn_ckpt), "--models", "resnet8", "--json", str(existing)]) == 2
    assert "--json" in (err := _error(capsys)) and "--overwrite" in err
    rank = ["smash", "rank", "--checkpoint", str(tmp_path / "none.safetensors"), "--data-root", "sample"]
    assert main([*rank, "--out", str(existing)]) == 2
    assert "--out" in _error(capsys)
    assert main([*rank, "--plot", str(existing)]) == 2
    assert "--plot" in _error(capsys)
    run = tmp_path / "run"
    run.mkdir()
    (run / "configs.json").write_text("{}")
    cfg = tmp_path / "s.yaml"
    cfg.write_text(
        f"trainer: {{default_root_dir: {run}, callbacks: [{{class_path: hyperzoo.stitch.run.StitchRun}}]}}\n"
        "model:\n  class_path: hyperzoo.lightning.stitch_module.StitchModule\n  init_args:\n    snnet:\n"
        "      class_path: hyperzoo.stitch.run.ZooSNNet\n"
        f"      init_args: {{anchors: [nope1, nope2], zoo: {tmp_path}}}\n"
    )
    assert main(["stitch", "fit", "--config", str(cfg)]) == 2
    assert "configs.json already exists" in (err := _error(capsys)) and "--overwrite" in err
    assert existing.read_text() == "{}" and (run / "configs.json").read_text() == "{}"


def test_zoo_add_refuses_an_existing_entry(tmp_path: Path, capsys) -> None:
    net = create_model("resnet8", num_classes=10)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    zoo = tmp_path / "zoo"
    save_model("trained", net, {"model": "resnet8", "test_acc": 0.8, "macs": 1e6}, zoo)
    before = (zoo / "trained.json").read_text()
    add = ["zoo", "add", "trained", "--model", "resnet8", "--weights", str(tmp_path / "w.safetensors"), "--zoo"]
    assert main([*add, str(zoo), "--num-classes", "10"]) == 2
    assert "'trained' already exists" in (err := _error(capsys)) and "--overwrite" in err
    assert (zoo / "trained.json").read_text() == before
    assert main([*add, str(zoo), "--num-classes", "10", "--overwrite"]) == 0
    assert load_meta("trained", zoo)["source"] == "torchvision"
    with pytest.raises(ConfigError, match="already exists"):
        save_model("trained", net, {"model": "resnet8"}, zoo)


def test_zoo_add_refuses_non_finite_weights(tmp_path: Path) -> None:
    net = create_model("resnet8", num_classes=10)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state["fc.weight"][0, 0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"))
    with pytest.raises(DataError, match=r"'fc.weight'.*NaN"):
        add_external("n", "resnet8", tmp_path / "nan.safetensors", num_classes=10, root=tmp_path / "zoo")
    assert not (tmp_path / "zoo" / "n.json").exists()


# ------------------------------------------------------------------------------------------------ merged models
def _two_entries(zoo: Path) -> None:
    from tests.merge.conftest import randomize

    for name, seed in (("a", 1), ("b", 2)):
        save_model(
            name,
            randomize(create_model("resnet8"), seed),  # option-A shortcuts, as the README's ResNet-20 zoo
            {"model": "resnet8", "num_classes": 10, "classes": list(range(10)), "test_acc": 0.5},
            zoo,
        )


MERGE = ["--method", "pleas", "--data-root", "sample", "--batches", "1", "--batch-size", "16", "--test-limit", "32"]


def test_merged_entry_loads_lists_and_stitches(tmp_path: Path, capsys) -> None:
    """`merge --width 1.25` (the README example): the entry records its widths, loads back, lists, stitches."""
    from hyperzoo.stitch.run import build_snnet

    zoo, out = tmp_path / "zoo", tmp_path / "merged"
    _two_entries(zoo)
    args = ["merge", "a", "b", "--width", "1.25", "--zoo", str(zoo), "--out", str(out), "--name", "ab", *MERGE]
    assert main(args) == 0
    meta = load_meta("ab", out)
    assert meta["channels"]["conv1"] == 20 and meta["channels"]["layer3.0.conv1"] == 80  # 16/32/64 x 1.25
    model = load_model("ab", out)  # the plain zoo loader, no special merged loader
    assert model.conv1.out_channels == 20 and model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    capsys.readouterr()
    assert main(["zoo", "list", "--zoo", str(out)]) == 0
    row = capsys.readouterr().out.splitlines()[1].split()
    acc, mmacs = float(row[-2]), float(row[-1])
    assert math.isfinite(acc) and 0 <= acc <= 100 and mmacs > 0
    assert mmacs == pytest.approx(meta["macs"] / 1e6, abs=0.1)
    save_model("base", create_model("resnet8"), {"model": "resnet8", "num_classes": 10}, out)
    snnet = build_snnet({"anchors": ["base", "ab"], "zoo": str(out), "window": 0})
    x = torch.randn(2, 3, 32, 32)
    assert all(snnet.eval()(x, i).shape == (2, 10) for i in range(len(snnet.configs)))
    # the same name again: refused before any work, kept; --overwrite replaces it
    assert main(args) == 2
    assert "'ab' already exists" in (err := _error(capsys)) and "--overwrite" in err
    assert load_meta("ab", out)["checksum"] == meta["checksum"]
    assert main([*args, "--overwrite"]) == 0


# ------------------------------------------------------------------------------------------------ zoo integrity
def test_zoo_entry_corruption_is_named(tmp_path: Path, capsys) -> None:
    save_model("m", create_model("resnet8"), {"model": "resnet8", "test_acc": 0.5}, tmp_path)
    save_model("ok", create_model("resnet8"), {"model": "resnet8", "test_acc": 0.6}, tmp_path)
    weights, card = tmp_path / "m.safetensors", tmp_path / "m.json"
    good_w, good_c = weights.read_bytes(), card.read_text()
    weights.write_bytes(good_w[: len(good_w) // 2])  # truncated
    with pytest.raises(DataError, match=r"zoo entry 'm'.*SHA-256.*truncated"):
        load_model("m", tmp_path)
    with pytest.raises(DataError, match=r"zoo entry 'm'.*not a readable safetensors"):
        load_model("m", tmp_path, verify=False)
    weights.write_bytes(good_w)
    card.write_text(good_c.replace('"test_acc": 0.5', '"test_acc": 0.9'))  # edited or flipped digits
    with pytest.raises(DataError, match=r"zoo entry 'm'.*checksum"):
        load_meta("m", tmp_path)
    card.write_text(good_c[:40])  # truncated JSON
    with pytest.raises(DataError, match=r"zoo entry 'm'.*not valid JSON"):
        load_model("m", tmp_path)
    assert main(["zoo", "list", "--zoo", str(tmp_path)]) == 0  # the other entries still list
    out = capsys.readouterr().out
    assert "m " in out and "unreadable" in out and "ok " in out and "60.00" in out
    # a weights file whose values are NaN (written behind the zoo's back, with a matching checksum)
    card.write_text(good_c)
    state = {k: v.clone() for k, v in create_model("resnet8").state_dict().items()}
    state["conv1.weight"].fill_(float("nan"))
    save_file(state, str(weights))
    with pytest.raises(DataError, match=r"'conv1.weight'.*NaN"):
        load_model("m", tmp_path, verify=False)


# ------------------------------------------------------------------------------------------------ graph stores
def _small_store(tmp_path: Path, compression: str | None, name: str) -> Path:
    from hyperzoo.graphs.store import GraphStore, write_graphs

    src = GraphStore(VAL_STORE)
    attrs = {"split": "val", "seed": 0, "max_cells": -1, "num_graphs_req": 12}  # as `graphs generate` records
    return write_graphs(tmp_path / name, [src[i] for i in range(12)], compression=compression, attrs=attrs)


def _flip(path: Path, offsets: np.ndarray) -> None:
    data = bytearray(path.read_bytes())
    for o in offsets:
        data[int(o)] ^= 0xFF
    path.write_bytes(bytes(data))


def _read_all(path: Path) -> list:
    from hyperzoo.graphs.store import GraphStore

    store = GraphStore(path)
    return [store[i] for i in range(len(store))]


def _same(a, b) -> bool:
    return (
        torch.equal(a.op, b.op)
        and torch.equal(a.shape, b.shape)
        and torch.equal(a.edge_index, b.edge_index)
        and torch.equal(a.edge_dist, b.edge_dist)
        and a.param_names == b.param_names
        and a.net_args == b.net_args
    )


@pytest.mark.parametrize("compression", [None, "lzf"])
def test_flipped_bytes_in_a_store_never_pass_silently(tmp_path: Path, compression: str | None) -> None:
    from hyperzoo.graphs.store import GraphStore

    path = _small_store(tmp_path, compression, "s.h5")
    clean = _read_all(path)
    with h5py.File(path, "r") as f:
        graph3 = int(f["edge_ptr"][3])
        if compression is None:  # the graphs' data in the memory-mapped layout
            lo = f["edge_index"].id.get_offset()
            region = (lo, f["edge_dist"].id.get_offset() + f["edge_dist"].size)
        else:
            region = (2048, path.stat().st_size)  # past the superblock
    if compression is None:  # one flipped distance of graph 3
        bad = tmp_path / "one.h5"
        bad.write_bytes(path.read_bytes())
        with h5py.File(path, "r") as f:
            _flip(bad, np.array([f["edge_dist"].id.get_offset() + graph3]))
        store = GraphStore(bad)
        assert _same(store[2], clean[2])  # the others still read
        with pytest.raises(DataError, match=r"graph 3 .*checksum.*generate --split val --num 12 --seed 0"):
            store[3]
    silent_without_checks = 0
    for seed in range(8):  # random flipped bytes in the data: an error, or exactly the old graphs
        bad = tmp_path / f"r{seed}.h5"
        bad.write_bytes(path.read_bytes())
        _flip(bad, np.random.default_rng(seed).choice(np.arange(*region), 20, replace=False))
        try:
            graphs = _read_all(bad)
        except DataError:
            try:
                unchecked = GraphStore(bad, verify=False)
                silent_without_checks += not all(_same(unchecked[i], g) for i, g in enumerate(clean))
            except DataError:
                pass
            continue
        assert all(_same(a, b) for a, b in zip(graphs, clean)), "corrupt store read silently"
    if compression is None:
        assert silent_without_checks > 0  # the fault model reaches data that only the checksums catch


def test_corrupt_offsets_and_old_stores(tmp_path: Path) -> None:
    from hyperzoo.graphs.store import FORMAT_VERSION, GraphStore, upgrade_store

    path = _small_store(tmp_path, "lzf", "s.h5")
    with h5py.File(path, "a") as f:
        f["node_ptr"][5] += 1
        f["node_ptr"][6] += 1  # still consistent sizes, but graph 5/6 boundaries moved
    with pytest.raises(DataError, match="offsets or vocabulary fail their checksum"):
        GraphStore(path)
    old = _small_store(tmp_path, "lzf", "old.h5")
    with h5py.File(old, "a") as f:  # what a version-1 writer left
        del f["crc32"]
        for key in ("checksum", "header_crc32"):
            del f.attrs[key]
        f.attrs["format_version"] = 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clean = _read_all(old)
        GraphStore(old)
    assert sum("has no checksums" in str(w.message) for w in caught) == 1  # once per store and process
    upgrade_store(old)
    store = GraphStore(old)
    assert store.attrs["format_version"] == FORMAT_VERSION and store._crc is not None
    assert all(_same(store[i], g) for i, g in enumerate(clean))


def test_shipped_stores_carry_checksums() -> None:
    from hyperzoo.graphs.store import GraphStore

    for name in ("val", "test", "predefined"):
        assert GraphStore(REPO / "graphs" / f"{name}.h5")._crc is not None


# ------------------------------------------------------------------------------------------------ stitch tables
@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"configs": [{"flops": 1', "not valid JSON"),
        ('{"configs": {}}', "no list of evaluated"),
        ('{"configs": [{"flops": "x", "acc": 0.5}]}', "row 0 needs numeric"),
        ('[{"flops": 1e6, "acc": NaN}]', "non-finite"),
    ],
)
def test_corrupt_stitch_table(tmp_path: Path, capsys, text: str, match: str) -> None:
    table = tmp_path / "configs.json"
    table.write_text(text)
    assert main(["stitch", "select", "--table", str(table), "--budget-flops", "1e9"]) == 2
    err = _error(capsys)
    assert match in err and str(table) in err


# ------------------------------------------------------------------------------------------------ non-finite GHNs
def test_ghn_with_nan_weights_is_refused(tmp_path: Path, capsys) -> None:
    from hyperzoo.ghn import create_ghn, load_ghn, save_ghn

    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3))
    with torch.no_grad():
        next(iter(ghn.decoder.parameters())).fill_(float("nan"))
    path = save_ghn(ghn, tmp_path / "nan")
    name = next(k for k, v in ghn.state_dict().items() if v.isnan().any())
    with pytest.raises(DataError, match=rf"{name}.*NaN"):
        load_ghn(path)
    out = tmp_path / "p.safetensors"
    assert main(["predict", "resnet8", "--ghn", str(path), "--out", str(out)]) == 2
    assert name in _error(capsys) and not out.exists()


def test_non_finite_predictions_raise() -> None:
    from hyperzoo.ghn import create_ghn

    ghn = create_ghn("ghn2", hid=16, max_shape=(16, 16, 3, 3)).eval()
    model = create_model("resnet8")
    assert all(torch.isfinite(t).all() for t in ghn.predict_parameters(model).values())
    with torch.no_grad():
        for p in ghn.decoder.parameters():
            p.fill_(float("inf"))  # weights set in memory, after any load check
        with pytest.raises(HyperzooError, match=r"NaN or infinite values for 'conv1.weight'"):
            ghn(model)
    ghn.train()  # training steps are not synchronised for the check
    ghn.predict_batch([model])


def test_written_files_are_complete_json(tmp_path: Path) -> None:
    """The zoo's JSON records the weights' SHA-256 and its own checksum (hyperzoo-zoo/2)."""
    save_model("m", create_model("resnet8"), {"model": "resnet8"}, tmp_path)
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["format"] == "hyperzoo-zoo/2" and len(meta["sha256"]) == len(meta["checksum"]) == 64
