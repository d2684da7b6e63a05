"""The published GHN-3 pickle format is read without running code: anything beyond its three globals is refused."""

from __future__ import annotations

import os
import pickle
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

warnings.filterwarnings("ignore", message=r".*`torch.jit.script` is deprecated.*", category=FutureWarning)

from hyperzoo.errors import DataError  # noqa: E402
from hyperzoo.ghn import from_pretrained, load_ghn  # noqa: E402
from hyperzoo.ghn.safe_pickle import UnsafePickleError, load_pickled_state_dict, read_legacy_storage  # noqa: E402
from tests.paths import CONFORMANCE  # noqa: E402

SHARED = CONFORMANCE / "ghn3"
JOBLIB = SHARED / "ghn3tm8_seed0.pt"
TORCH = SHARED / "ghn3tm8_seed0_torch.pt"


class _RunsCommand:
    """Unpickling this runs ``touch <marker>`` through ``os.system`` (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _StorageFromBytes:
    """Pickles as ``torch.storage._load_from_bytes(data)``, the call the published format makes per tensor."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.data,))


def _legacy_stream(obj: object) -> bytes:
    """A legacy ``torch.save`` stream whose object pickle is ``obj`` (headers as torch writes them)."""
    header = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}]
    return b"".join(pickle.dumps(h, protocol=2) for h in header) + pickle.dumps(obj, protocol=2)


def test_outer_pickle_that_runs_a_command_is_refused(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps(OrderedDict(w=_RunsCommand(marker)), protocol=4))
    with pytest.raises(UnsafePickleError, match=r"posix\.system|os\.system"):
        load_pickled_state_dict(bad)
    assert not marker.exists()
    for loader in (from_pretrained, load_ghn):  # every GHN entry point refuses it the same way
        with pytest.raises(UnsafePickleError):
            loader(bad)
    assert not marker.exists()


def test_nested_storage_stream_that_runs_a_command_is_refused(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "evil_nested.pt"
    payload = _StorageFromBytes(_legacy_stream(_RunsCommand(marker)))
    bad.write_bytes(pickle.dumps(OrderedDict(w=payload), protocol=4))
    with pytest.raises(UnsafePickleError, match=r"system"):
        load_pickled_state_dict(bad)
    assert not marker.exists()
    with pytest.raises(UnsafePickleError):
        read_legacy_storage(_legacy_stream(_RunsCommand(marker)))
    assert not marker.exists()


def test_other_globals_are_refused_by_name(tmp_path):
    bad = tmp_path / "eval.pt"
    bad.write_bytes(pickle.dumps({"w": torch.Size([1])}, protocol=4))  # harmless class, still not allowed
    with pytest.raises(UnsafePickleError, match=r"torch\.Size"):
        load_pickled_state_dict(bad)


def test_torch_zip_that_runs_a_command_is_refused(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "evil_zip.pt"
    torch.save({"state_dict": {"w": _RunsCommand(marker)}, "config": {}}, bad)
    with pytest.raises(DataError):
        from_pretrained(bad)
    assert not marker.exists()


@pytest.mark.conformance
def test_truncated_and_corrupt_files_give_clear_errors(tmp_path):
    data = JOBLIB.read_bytes()
    short = tmp_path / "short.pt"
    short.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"short\.pt.*(corrupt|truncated)") as info:
        load_pickled_state_dict(short)
    assert not isinstance(info.value, UnsafePickleError)
    flipped = bytearray(data)
    flipped[700:760] = b"\x00" * 60  # inside the first nested storage stream
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(DataError, match=r"corrupt\.pt"):
        load_pickled_state_dict(corrupt)
    with pytest.raises(DataError, match="not found"):
        load_pickled_state_dict(tmp_path / "missing.pt")


@pytest.mark.conformance
def test_published_format_reads_the_same_tensors_as_the_torch_format():
    state = load_pickled_state_dict(JOBLIB)
    ref = torch.load(TORCH, weights_only=True)["state_dict"]
    moved = {"centrality_embed_in.weight", "centrality_embed_out.weight", "input_dist_embed.weight"}
    assert len(state) == len(ref) == 60
    for key, value in state.items():
        other = ref["gnn.0." + key] if key in moved else ref[key]
        assert value.dtype == torch.float32 and torch.equal(value, other), key


def test_legacy_storage_round_trip():
    import io

    for dtype in (torch.float32, torch.int64, torch.float16):
        t = torch.arange(7).to(dtype)
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TypedStorage is deprecated; the published files were written with it
            torch.save(t.storage(), buf, _use_new_zipfile_serialization=False)
        assert torch.equal(read_legacy_storage(buf.getvalue()), t)
