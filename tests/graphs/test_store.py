"""Graph store: round trip, lazy reads, errors; published DeepNets-1M files; resumable generation."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from hyperzoo.errors import DataError
from hyperzoo.graphs import ArchGraph, graph_from_module
from hyperzoo.graphs.deepnets1m_io import DeepNets1MReader
from hyperzoo.graphs.generate import generate_split
from hyperzoo.graphs.store import FORMAT_VERSION, GraphStore, GraphStoreWriter, write_graphs
from tests.paths import REPO, SHARED

DEEPNETS = SHARED / "conformance" / "deepnets1m"


def _tiny_graphs() -> list[ArchGraph]:
    g1 = ArchGraph.from_dag(
        ["input", "conv", "bn", "glob_avg", "conv", "bias"],
        ["", "stem.weight", "bn.weight", "", "fc.weight", "fc.bias"],
        [None, (8, 3, 3, 3), (8,), None, (10, 8), (10,)],
        [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)],
        name="chain",
    )
    g2 = ArchGraph.from_dag(
        ["input", "conv", "conv", "sum", "max_pool"],
        ["", "a.weight", "b.weight", "", "max_pool"],
        [None, (4, 3, 1, 1), (4, 3, 3, 3), None, (1, 1, 3, 3)],
        [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)],
        name="branch",
    )
    g1.net_args, g2.net_args = {"k": 1}, {"k": [2, "x"]}
    return [g1, g2]


def _same(a: ArchGraph, b: ArchGraph) -> bool:
    return (
        torch.equal(a.op, b.op)
        and torch.equal(a.shape, b.shape)
        and torch.equal(a.edge_index, b.edge_index)
        and torch.equal(a.edge_dist, b.edge_dist)
        and list(a.param_names) == list(b.param_names)
    )


@pytest.mark.parametrize("compression", ["lzf", None])
def test_round_trip_pickle_and_s_max(tmp_path: Path, compression: str | None) -> None:
    graphs = _tiny_graphs()
    path = write_graphs(tmp_path / "g.h5", graphs * 3, compression=compression, flush_every=4)
    assert not (tmp_path / "g.h5.tmp").exists()
    store = pickle.loads(pickle.dumps(GraphStore(path)))  # nothing open yet
    assert len(store) == 6 and store.attrs["format_version"] == FORMAT_VERSION
    for i, g in enumerate(graphs * 3):
        got = store[i]
        assert _same(got, g) and got.name == g.name and got.net_args == g.net_args and got.index == i
    store[0]
    pickle.dumps(store)  # an opened store still pickles (without its handle)
    assert store.num_nodes().tolist() == [6, 5] * 3
    short = GraphStore(path, s_max=1)[0]
    assert bool((short.edge_dist == 1).all()) and short.edge_index.shape[1] == 5


def test_writer_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "g.h5"
    with pytest.raises(RuntimeError), GraphStoreWriter(path) as w:
        w.append(_tiny_graphs()[0])
        raise RuntimeError("killed")
    assert not path.exists() and not (tmp_path / "g.h5.tmp").exists()


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        GraphStore(tmp_path / "missing.h5")
    path = write_graphs(tmp_path / "g.h5", _tiny_graphs())
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"truncated\.h5.*corrupt"):
        GraphStore(truncated)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DataError, match=rf"format_version {FORMAT_VERSION + 1}.*upgrade"):
        GraphStore(path)
    path = write_graphs(tmp_path / "h.h5", _tiny_graphs())
    with h5py.File(path, "a") as f:
        f.attrs["num_graphs"] = 5
    with pytest.raises(DataError, match="inconsistent"):
        GraphStore(path)


def _reader(name: str) -> DeepNets1MReader:
    return DeepNets1MReader(DEEPNETS / f"deepnets1m_{name}.hdf5", s_max=50)


def _stored_cell_order(graph: ArchGraph, n_cells: int) -> list[int]:
    """The order in which the reference generator writes node rows: grouped by cell (its node_info lists)."""
    cells, cell = [], 0
    for name in graph.param_names:
        if name.startswith("cells."):
            cell = int(name.split(".")[1])
        elif name.startswith(("classifier", "auxiliary")):
            cell = n_cells - 1
        elif name.startswith(("stem", "pos_enc")):
            cell = 0
        cells.append(cell)
    return sorted(range(len(cells)), key=cells.__getitem__)


@pytest.mark.conformance
@pytest.mark.parametrize("name", ["train", "eval"])
def test_published_deepnets1m_round_trip(name: str) -> None:
    """Rebuilt CNNs give the stored edges exactly; stored node rows are the rebuilt nodes grouped by cell.

    The reference generator writes ``adj`` in graph order but ``nodes`` in per-cell order (a bug of
    ppuda's ``net_generator.py``), so node labels only line up with ``adj`` after that permutation. Nets with
    ``msa`` cells match too: under torch 2.14 the reference's graphs have no ``msa`` node (its positional ``Clone``
    rule never fires) and a ``sum`` node after the positional encoding, and the default ``"ghn2"`` rules of
    :func:`graph_from_module` (with the reference's single-image trace) do the same.
    """
    reader = _reader(name)
    assert len(reader) == (16 if name == "train" else 30)
    torch.set_num_threads(1)
    n_cnn = n_vit = 0
    for i in range(len(reader)):
        stored = reader[i]
        args = stored.net_args
        assert stored.num_nodes == args["num_nodes"]
        net = reader.build_network(i, light=True)
        assert sum(p.numel() for p in net.parameters()) == args["num_params"]["cifar10"]
        has_msa = "msa" in {op for op, _ in args["genotype"]["normal"] + args["genotype"]["reduce"]}
        rebuilt = graph_from_module(net, s_max=50)
        assert torch.equal(rebuilt.edge_index, stored.edge_index)
        assert torch.equal(rebuilt.edge_dist, stored.edge_dist)
        perm = _stored_cell_order(rebuilt, args["n_cells"])
        assert [rebuilt.op_names[k] for k in perm] == stored.op_names
        assert [rebuilt.param_names[k] for k in perm] == list(stored.param_names)
        n_cnn += not has_msa
        n_vit += has_msa
    assert n_cnn >= 8 and n_vit >= 4


@pytest.mark.conformance
def test_published_reader_pickles_and_shapes() -> None:
    reader = _reader("eval")
    g = reader[2]
    clone = pickle.loads(pickle.dumps(reader))
    assert _same(clone[2], g) and g.net_args["C"] == 32
    assert bool((g.shape[g.has_param].prod(dim=1) > 0).all())  # every parameter node has a shape


def _parts(out: Path) -> list[Path]:
    return sorted(out.with_name(out.name + ".parts").glob("part-*.h5"))


def test_generation_survives_sigkill(tmp_path: Path) -> None:
    """Kill the generator after some parts, restart it: the result equals an uninterrupted run."""
    out = tmp_path / "val.h5"
    cmd = [sys.executable, "-m", "hyperzoo.cli", "graphs", "generate", "--split", "val", "--num", "6",
           "--out", str(out), "--part-size", "2", "--max-cells", "4", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while len(_parts(out)) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run finished before it was killed; the test needs a larger --num"
    killed_with = len(_parts(out))
    assert killed_with >= 1
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not out.with_name(out.name + ".parts").exists()

    ref = generate_split("val", 6, tmp_path / "ref.h5", part_size=6, max_cells=4, progress=False)
    a, b = GraphStore(out), GraphStore(ref)
    assert len(a) == len(b) == 6
    hashes = [a[i].net_args["hash"] for i in range(6)]
    assert len(set(hashes)) == 6  # no duplicates
    assert hashes == [b[i].net_args["hash"] for i in range(6)]
    assert all(_same(a[i], b[i]) for i in range(6))
    # a finished store is not regenerated
    assert generate_split("val", 6, out, part_size=2, max_cells=4, progress=False) == out


@pytest.mark.conformance
def test_published_reader_rebuild_aligns_labels_with_edges() -> None:
    reader = _reader("train")
    stored, rebuilt = reader[1], DeepNets1MReader(reader.path, rebuild=True)[1]
    assert torch.equal(stored.edge_index, rebuilt.edge_index)
    assert sorted(stored.param_names) == sorted(rebuilt.param_names)
    assert list(stored.param_names) != list(rebuilt.param_names)  # the stored rows are cell-grouped
    assert rebuilt.net_args == stored.net_args


def test_in_memory_and_on_disk_reads_agree() -> None:
    path = Path(__file__).resolve().parents[2] / "graphs" / "val.h5"
    disk, memory = GraphStore(path, in_memory=False), GraphStore(path, in_memory=True)
    assert memory.in_memory and not disk.in_memory and GraphStore(path).in_memory  # small stores: auto
    for i in (0, 7, len(disk) - 1):
        a, b = disk[i], memory[i]
        assert torch.equal(a.op, b.op) and torch.equal(a.shape, b.shape)
        assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.edge_dist, b.edge_dist)
        assert a.param_names == b.param_names and a.name == b.name and a.net_args == b.net_args
    assert pickle.loads(pickle.dumps(memory))[3].name == memory[3].name


def test_restart_with_fewer_graphs_keeps_exactly_num(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts left by a longer request (killed before its merge) give exactly ``num`` graphs to a shorter one."""
    import hyperzoo.graphs.generate as gen

    out = tmp_path / "train.h5"
    monkeypatch.setattr(gen.shutil, "rmtree", lambda *a, **k: None)  # keep the parts, as a kill after merge would
    gen.generate_split("train", 6, out, part_size=2, max_cells=1, progress=False)
    out.unlink()
    monkeypatch.undo()
    gen.generate_split("train", 4, out, part_size=2, max_cells=1, progress=False)
    assert len(GraphStore(out)) == 4


def test_uncompressed_stores_are_memory_mapped(tmp_path: Path) -> None:
    """compression=None finalises a contiguous layout; reads come from memory maps and equal the chunked store's."""
    graphs = _tiny_graphs() * 3
    chunked = GraphStore(write_graphs(tmp_path / "c.h5", graphs, compression="lzf"))
    path = write_graphs(tmp_path / "m.h5", graphs, compression=None, flush_every=4)
    mapped = GraphStore(path)
    assert mapped.contiguous and not mapped.in_memory and not chunked.contiguous
    for i in range(len(graphs)):
        a, b = mapped[i], chunked[i]
        assert _same(a, b) and a.name == b.name and a.net_args == b.net_args
    assert isinstance(mapped._arrays["op"], np.memmap)
    clone = pickle.loads(pickle.dumps(mapped))  # maps are not pickled, the clone maps the file again
    assert clone._arrays is None and _same(clone[4], graphs[4])
    with h5py.File(path) as f:  # other readers still find the string datasets
        assert f["name"][1].decode() == "branch"
    # a store whose data was cut off after the header is refused on first read, with the file named
    size = path.stat().st_size
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(path.read_bytes()[: size - 64])
    with pytest.raises(DataError, match=r"cut\.h5"):
        store = GraphStore(truncated)
        store[5]


def test_empty_contiguous_store(tmp_path: Path) -> None:
    store = GraphStore(write_graphs(tmp_path / "e.h5", [], compression=None))
    assert len(store) == 0 and store.contiguous
