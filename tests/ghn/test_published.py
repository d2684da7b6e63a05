"""Published GHNs by name: the registry, the real download code against a server on 127.0.0.1, the hub cache offline.

No test touches the internet: ppuda files are served by an ``http.server`` the test starts on loopback (the download
base URL is overridden with ``base_url=``/``$HYPERZOO_PPUDA_URL``), GHN-3 files come from a pre-filled Hugging Face
Hub cache in ``tmp_path`` with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import dataclasses
import http.server
import os
import shutil
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from hyperzoo.cli import main
from hyperzoo.errors import ConfigError, DataError
from hyperzoo.ghn import create_ghn, from_pretrained, load_reference_checkpoint
from hyperzoo.ghn.checkpoint import REFERENCE_KEY_MAP
from hyperzoo.ghn.commands import load_ghn_arg
from hyperzoo.ghn.published import (
    PUBLISHED,
    fetch_published,
    git_blob_sha1,
    is_cached,
    list_published,
    load_published,
)
from hyperzoo.nets import create_model
from hyperzoo.registry import RegistryEntry
from tests.paths import SHARED

GHN3_FILE = SHARED / "conformance" / "ghn3" / "ghn3tm8_seed0.pt"

# ppuda's constructor config of each published file (ppuda experiments/train_ghn.py; shared/reference/ghn.md C.4)
PPUDA_CONFIGS = {
    "ghn2-cifar10-ppuda": ("ghn2", dict(max_shape=(64, 64, 11, 11), num_classes=10, ve=True, layernorm=True)),
    "ghn2-imagenet-ppuda": ("ghn2", dict(max_shape=(64, 64, 16, 16), num_classes=1000, ve=True, layernorm=True)),
    "ghn1-cifar10-ppuda": ("ghn1", dict(max_shape=(64, 64, 11, 11), num_classes=10, ve=False, layernorm=False)),
    "ghn1-imagenet-ppuda": ("ghn1", dict(max_shape=(64, 64, 16, 16), num_classes=1000, ve=False, layernorm=False)),
    "mlp-cifar10-ppuda": ("mlp", dict(max_shape=(64, 64, 11, 11), num_classes=10, ve=True, layernorm=True)),
}
# GHN parameter counts of the published files (shared/reference/ghn.md C.4; GHN-1 ImageNet = GHN-2 ImageNet - 96)
PARAMS = {
    "ghn2-cifar10-ppuda": 1_620_764,
    "ghn2-imagenet-ppuda": 2_319_720,
    "ghn1-cifar10-ppuda": 1_620_668,
    "ghn1-imagenet-ppuda": 2_319_624,
    "mlp-cifar10-ppuda": 1_614_396,
}


def ppuda_file(path: Path, name: str, seed: int = 0) -> Path:
    """A checkpoint in the layout ppuda's ``train_ghn.py`` saves, with ppuda's key names and config."""
    variant, cfg = PPUDA_CONFIGS[name]
    torch.manual_seed(seed)
    ghn = create_ghn(variant, max_shape=cfg["max_shape"], num_classes=cfg["num_classes"])
    inverse = {new: old for old, new in REFERENCE_KEY_MAP.items()}
    state = {}
    for key, value in ghn.state_dict().items():
        prefix = max((p for p in inverse if key.startswith(p)), key=len)
        state[inverse[prefix] + key[len(prefix) :]] = value.clone()
    config = {
        "max_shape": cfg["max_shape"],
        "num_classes": cfg["num_classes"],
        "hypernet": "mlp" if variant == "mlp" else "gatedgnn",
        "decoder": "conv",
        "weight_norm": variant != "ghn1",
        "ve": cfg["ve"],
        "layernorm": cfg["layernorm"],
        "hid": 32,
    }
    optimizer = {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.zeros(3)}}, "param_groups": [{"lr": 1e-3}]}
    torch.save({"state_dict": state, "optimzer": optimizer, "epoch": 299, "config": config}, path)
    return path


# ---------------------------------------------------------------------------------------------- the registry
def test_every_name_is_listed_with_source_and_paper_numbers():
    names = [e.name for e in list_published()]
    assert names[:2] == ["ghn2-cifar10", "ghn2-cifar10-resnets"]  # the shipped ones, in the same listing
    shipped = {"ghn2-cifar10", "ghn2-cifar10-resnets"}
    assert set(names) == {*shipped, *PPUDA_CONFIGS, "ghn3-t", "ghn3-s", "ghn3-l", "ghn3-xl"}
    by_name = {e.name: e for e in list_published()}
    assert by_name["ghn2-cifar10-ppuda"].blob_sha1 == "4f290e0fad1b73066eeabb50be52e0c377d0b15b"
    assert "58.6%" in by_name["ghn2-cifar10-ppuda"].paper_accuracy
    assert "20.0%" in by_name["ghn3-xl"].paper_accuracy and by_name["ghn3-xl"].filename == "ghn3xlm16.pt"
    assert all(e.revision == "4673a42507a9dcd0a5ae04e74599e8c92af689b9" for e in by_name.values() if e.kind == "github")
    assert [e.filename for e in list_published("ghn3*")] == ["ghn3tm8.pt", "ghn3sm8.pt", "ghn3lm8.pt", "ghn3xlm16.pt"]


def test_git_blob_id_is_gits(tmp_path):
    (tmp_path / "f").write_bytes(b"hello\n")
    assert git_blob_sha1(tmp_path / "f") == "ce013625030ba8dba906f756967f9e9ca394464a"  # `git hash-object f`


def test_unknown_names_get_the_closest_ones(capsys):
    with pytest.raises(DataError, match=r"'ghn3-xl'.*hyperzoo ghns"):
        from_pretrained("ghn3-xxl")
    with pytest.raises(DataError, match="ghn2-cifar10-ppuda"):
        load_ghn_arg("ghn2-cifar10-ppdua")
    assert main(["predict", "resnet18", "--ghn", "ghn1-imagenet", "--out", "x.safetensors"]) == 2
    assert "ghn1-imagenet-ppuda" in capsys.readouterr().err


def test_hyperzoo_ghns_lists_every_name(capsys):
    assert main(["ghns", "--width", "250"]) == 0
    out = capsys.readouterr().out
    for e in list_published():
        assert e.name in out and e.dataset in out
    assert "shipped" in out and "downloadable" in out and "58.6%" in out and "SamsungSAILMontreal/ghn3" in out
    assert main(["ghns", "nothing*"]) == 2


# ---------------------------------------------------------------------------------------------- ppuda configs
@pytest.mark.parametrize("name", list(PPUDA_CONFIGS))
def test_every_ppuda_configuration_loads_with_weights_only(tmp_path, name):
    path = ppuda_file(tmp_path / "ckpt.pt", name)
    ghn = load_reference_checkpoint(path)
    _, cfg = PPUDA_CONFIGS[name]
    assert not ghn.training and ghn.num_classes == cfg["num_classes"] and ghn.epoch == 299
    assert tuple(ghn.max_shape) == cfg["max_shape"] and ghn.ve == cfg["ve"] and ghn.hypernet == ghn.config["hypernet"]
    assert sum(p.numel() for p in ghn.parameters()) == PARAMS[name]
    if name == "ghn1-imagenet-ppuda":  # predicts an ImageNet ResNet-18 end to end
        net = create_model("resnet18", num_classes=1000)
        with torch.no_grad():
            params = ghn.predict_parameters(net)
        assert params["fc.weight"].shape == (1000, 512) and torch.isfinite(params["conv1.weight"]).all()


def test_unsupported_ppuda_options_are_named(tmp_path):
    path = ppuda_file(tmp_path / "ckpt.pt", "ghn2-cifar10-ppuda")
    ckpt = torch.load(path, weights_only=True)
    ckpt["config"]["decoder"] = "mlp"
    torch.save(ckpt, path)
    with pytest.raises(ConfigError, match="decoder='mlp'"):
        load_reference_checkpoint(path)


# ---------------------------------------------------------------------------------------------- loopback server
class _Server:
    """Serves ``files`` (name -> bytes) on 127.0.0.1; ``mode`` per name: ok, 404 or cut (closes half-way)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.mode: dict[str, str] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(self.path)
                mode = server.mode.get(name, "ok")
                if name not in server.files or mode == "404":
                    self.send_error(404, "Not Found")
                    return
                data = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if mode == "cut" else data)
                self.wfile.flush()
                if mode == "cut":
                    self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ppuda/checkpoints"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def served(tmp_path, server, monkeypatch):
    """ghn2-cifar10-ppuda served on loopback, with the registry expecting that file's blob id; returns the bytes."""
    path = ppuda_file(tmp_path / "ghn2_cifar10.pt", "ghn2-cifar10-ppuda")
    entry = PUBLISHED.entry("ghn2-cifar10-ppuda")
    info = dataclasses.replace(entry.meta["info"], blob_sha1=git_blob_sha1(path))
    monkeypatch.setitem(
        PUBLISHED._entries, entry.name, RegistryEntry(entry.name, entry.fn, entry.family, {"info": info})
    )
    server.files["ghn2_cifar10.pt"] = path.read_bytes()
    monkeypatch.setenv("HYPERZOO_PPUDA_URL", server.url)
    monkeypatch.delenv("HYPERZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return server.files["ghn2_cifar10.pt"]


def _cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_download_verifies_caches_and_does_not_download_twice(tmp_path, server, served):
    cache = tmp_path / "cache"
    path = fetch_published("ghn2-cifar10-ppuda", cache_dir=cache)
    assert path.read_bytes() == served and path.parent.parent.name == "ghns"
    assert _cache_files(cache) == ["ghns/ppuda-4673a42/ghn2_cifar10.pt"]  # no temporary file left behind
    assert len(server.requests) == 1 and server.requests[0] == "/ppuda/checkpoints/ghn2_cifar10.pt"
    assert is_cached("ghn2-cifar10-ppuda", cache_dir=cache)
    ghn = load_published("ghn2-cifar10-ppuda", cache_dir=cache)
    assert ghn.num_classes == 10 and len(server.requests) == 1  # the second call read the cache


def test_from_pretrained_and_cli_accept_the_name(tmp_path, server, served, monkeypatch, capsys):
    monkeypatch.setenv("HYPERZOO_CACHE", str(tmp_path / "cache"))
    assert from_pretrained("ghn2-cifar10-ppuda").ve is True
    out = tmp_path / "r20.safetensors"
    assert main(["predict", "resnet20", "--ghn", "ghn2-cifar10-ppuda", "--out", str(out)]) == 0
    assert out.is_file() and len(server.requests) == 1
    assert main(["ghns", "ghn2*", "--width", "250"]) == 0
    assert "downloadable, cached" in capsys.readouterr().out


def test_tampered_download_is_deleted_and_refused(tmp_path, server, served):
    server.files["ghn2_cifar10.pt"] = served[:-1] + bytes([served[-1] ^ 1])
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"does not match the published file.*deleted"):
        fetch_published("ghn2-cifar10-ppuda", cache_dir=cache)
    assert _cache_files(cache) == []


def test_tampered_cache_file_is_deleted_and_refused(tmp_path, server, served):
    cache = tmp_path / "cache"
    path = fetch_published("ghn2-cifar10-ppuda", cache_dir=cache)
    path.write_bytes(b"not the file")
    with pytest.raises(DataError, match=r"cached file .* does not match"):
        load_published("ghn2-cifar10-ppuda", cache_dir=cache)
    assert not path.exists()
    assert fetch_published("ghn2-cifar10-ppuda", cache_dir=cache).read_bytes() == served  # fetched again


def test_interrupted_transfer_leaves_no_partial_file(tmp_path, server, served):
    server.mode["ghn2_cifar10.pt"] = "cut"
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"interrupted.*nothing was kept.*place it at"):
        fetch_published("ghn2-cifar10-ppuda", cache_dir=cache)
    assert _cache_files(cache) == []


def test_http_404_names_the_url_and_the_manual_route(tmp_path, server, served):
    server.mode["ghn2_cifar10.pt"] = "404"
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch_published("ghn2-cifar10-ppuda", cache_dir=cache)
    msg = str(info.value)
    assert "HTTP 404" in msg and f"{server.url}/ghn2_cifar10.pt" in msg
    assert str(cache / "ghns" / "ppuda-4673a42" / "ghn2_cifar10.pt") in msg and _cache_files(cache) == []


def test_no_network_and_offline_mode_say_where_to_place_the_file(tmp_path, server, served, monkeypatch):
    cache = tmp_path / "cache"
    server.close()  # nothing listens on the port any more
    with pytest.raises(DataError, match=r"cannot download ghn2-cifar10-ppuda \(no network\?"):
        fetch_published("ghn2-cifar10-ppuda", cache_dir=cache, timeout=5)
    monkeypatch.setenv("HYPERZOO_OFFLINE", "1")
    with pytest.raises(DataError, match=r"not cached and the network is off.*ghn2_cifar10.pt.*place it at"):
        fetch_published("ghn2-cifar10-ppuda", cache_dir=cache)
    assert _cache_files(cache) == []


def test_a_file_placed_by_hand_is_used_offline(tmp_path, served, monkeypatch):
    cache = tmp_path / "cache"
    dest = cache / "ghns" / "ppuda-4673a42" / "ghn2_cifar10.pt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(served)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_published("ghn2-cifar10-ppuda", cache_dir=cache).num_classes == 10


# ---------------------------------------------------------------------------------------------- the hub cache
REPO_DIR = "models--SamsungSAILMontreal--ghn3"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fill_hub_cache(hub: Path, filename: str, source: Path | bytes) -> Path:
    """Puts ``filename`` into a hub cache in the hub's own layout: blobs/, snapshots/<commit>/ (links), refs/main."""
    repo = hub / REPO_DIR
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    blob = repo / "blobs" / f"etag-{filename}"
    blob.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, bytes):
        blob.write_bytes(source)
    else:
        shutil.copyfile(source, blob)
    snap = repo / "snapshots" / COMMIT / filename
    snap.parent.mkdir(parents=True, exist_ok=True)
    snap.symlink_to(Path("..") / ".." / "blobs" / blob.name)
    return snap


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    hub = tmp_path / "hf" / "hub"
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # the hub cache is $HF_HOME/hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


def test_hub_path_resolves_from_a_prefilled_cache_offline(hub, monkeypatch):
    snap = fill_hub_cache(hub, "ghn3tm8.pt", b"small stand-in")
    path = fetch_published("ghn3-t")
    assert path == snap and path.read_bytes() == b"small stand-in"
    assert is_cached("ghn3-t") and not is_cached("ghn3-xl")
    # the GHN-3 reader receives exactly that file (a stand-in reader: the real one is hyperzoo.ghn.reference_ghn3)
    seen = {}
    fake = types.ModuleType("hyperzoo.ghn.reference_ghn3")
    fake.load_reference_ghn3 = lambda p, map_location="cpu": seen.setdefault("args", (Path(p), map_location))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hyperzoo.ghn.reference_ghn3", fake)
    from_pretrained("ghn3-t")
    assert seen["args"] == (snap, "cpu")


def test_hub_offline_and_not_cached_says_which_file_and_where(hub):
    fill_hub_cache(hub, "ghn3tm8.pt", b"x")
    with pytest.raises(DataError) as info:
        fetch_published("ghn3-xl")
    msg = str(info.value)
    assert "ghn3xlm16.pt" in msg and "SamsungSAILMontreal/ghn3" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "resolve/main/ghn3xlm16.pt" in msg and str(hub / REPO_DIR) in msg
    manual = Path(os.environ["HYPERZOO_CACHE"]) / "ghns" / "ghn3" / "ghn3xlm16.pt"
    assert f"place it at {manual}" in msg
    manual.parent.mkdir(parents=True, exist_ok=True)
    manual.write_bytes(b"placed by hand")
    try:
        assert fetch_published("ghn3-xl") == manual and is_cached("ghn3-xl")
    finally:
        manual.unlink()


def test_hub_cache_dir_argument_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    other = tmp_path / "elsewhere"
    snap = fill_hub_cache(other, "ghn3sm8.pt", b"s")
    assert fetch_published("ghn3-s", cache_dir=other) == snap


@pytest.mark.conformance
def test_ghn3_loads_from_the_hub_cache(hub):
    fill_hub_cache(hub, "ghn3tm8.pt", GHN3_FILE)
    ghn = from_pretrained("ghn3-t")
    assert not ghn.training and ghn.num_classes == 1000 and ghn.hid == 64
    assert sum(p.numel() for p in ghn.parameters()) == 6_906_632
