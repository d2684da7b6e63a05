"""Reading the published GHN-3 files (``joblib.dump`` of a state dict) without running any code they contain.

The Hugging Face checkpoints of ``SamsungSAILMontreal/ghn3`` (``ghn3tm8.pt``, ...) are plain pickles (protocol 4) of
an ``OrderedDict`` of CPU tensors. Their pickle imports exactly three globals:

- ``collections.OrderedDict`` (the container, and the empty backward-hook dict of each tensor);
- ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``;
- ``torch.storage._load_from_bytes(b)``, applied to a byte string holding the storage in torch's *legacy*
  (pre-zip) ``torch.save`` format.

``_load_from_bytes`` calls ``torch.load(..., weights_only=False)``, i.e. an unrestricted unpickler, so allowing it
would make the whole file as dangerous as any pickle. This module never calls it (nor any unrestricted loader):
:class:`RestrictedUnpickler` resolves the three names to local functions, and the nested legacy stream is decoded by
:func:`read_legacy_storage` with a second restricted unpickler whose only allowed globals are torch's plain storage
classes (``torch.FloatStorage``, ...), used only as dtype tags inside persistent ids. Anything else a pickle asks
for (``os.system``, ``builtins.eval``, ``subprocess.Popen``, any class) raises :class:`UnsafePickleError` naming it,
before anything is called.

Legacy stream layout (``torch.serialization._legacy_save``): five pickles (magic number, protocol version 1001,
system info, the object with persistent ids ``('storage', <StorageClass>, key, location, numel[, view_meta])``, the
list of storage keys), then for each key an int64 element count followed by the raw little-endian data.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from hyperzoo.errors import DataError

__all__ = ["RestrictedUnpickler", "UnsafePickleError", "load_pickled_state_dict", "read_legacy_storage"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

#: plain storage classes of torch's legacy format -> dtype (the only globals the nested stream may name)
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


class UnsafePickleError(DataError):
    """A pickle asks for a global (function or class) outside the small set a checkpoint format needs."""


class _StorageTag:
    """Stands for ``torch.<Name>Storage`` inside the nested stream: carries the dtype, calls nothing."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals listed in ``allowed`` and refuses every other one.

    Args:
        file: a binary file object.
        allowed: ``{(module, name): object}``: what each allowed global resolves to. Nothing outside it is imported.
        where: the file the pickle comes from, for error messages.
    """

    def __init__(self, file: Any, allowed: dict[tuple[str, str], Any], where: str) -> None:
        super().__init__(file)
        self._allowed = allowed
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        raise UnsafePickleError(
            f"{self._where}: the pickle asks for the global {module}.{name}, which a GHN checkpoint never needs; "
            "refusing to load it (nothing was executed). Only load checkpoints from sources you trust, and prefer "
            "safetensors files"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._where}: unexpected persistent id {pid!r} in the pickle")


def _rebuild_tensor(
    storage: Any, offset: int, size: tuple[int, ...], stride: tuple[int, ...], requires_grad: bool, hooks: Any,
    metadata: Any = None,
) -> torch.Tensor:  # fmt: skip
    """``torch._utils._rebuild_tensor_v2`` for a storage read by :func:`read_legacy_storage` (no hooks, no metadata)."""
    if not isinstance(storage, torch.Tensor):
        raise UnsafePickleError(f"_rebuild_tensor_v2 got a {type(storage).__name__} instead of a decoded storage")
    if hooks:
        raise UnsafePickleError("a tensor in the pickle carries backward hooks; refusing to load it")
    size_t, stride_t = tuple(int(v) for v in size), tuple(int(v) for v in stride)
    if len(size_t) != len(stride_t) or int(offset) < 0:
        raise DataError(f"corrupt tensor record: size {size_t}, stride {stride_t}, offset {offset}")
    needed = int(offset) + sum((s - 1) * st for s, st in zip(size_t, stride_t)) + 1 if all(size_t) else 0
    if needed > storage.numel():
        raise DataError(
            f"corrupt tensor record: size {size_t} at offset {offset} exceeds its storage of {storage.numel()}"
        )
    t = (
        torch.as_strided(storage, size_t, stride_t, int(offset)).clone()
        if storage.numel()
        else storage.new_empty(size_t)
    )
    return t.requires_grad_(bool(requires_grad)) if t.is_floating_point() else t


class _StorageUnpickler(RestrictedUnpickler):
    """The nested stream's object pickle: globals limited to storage tags, persistent ids to storage records."""

    def __init__(self, file: Any, where: str) -> None:
        allowed = {("torch", name): _StorageTag(name) for name in STORAGE_DTYPES}
        super().__init__(file, allowed, where)
        self.records: list[tuple[str, torch.dtype, int]] = []

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise UnsafePickleError(f"{self._where}: unexpected persistent id {pid!r} in a legacy storage stream")
        tag, key, location, numel = pid[1], pid[2], pid[3], pid[4]
        if not isinstance(tag, _StorageTag) or not isinstance(key, str) or not isinstance(numel, int):
            raise UnsafePickleError(f"{self._where}: malformed storage record {pid!r}")
        if len(pid) == 6 and pid[5] is not None:
            raise UnsafePickleError(f"{self._where}: storage views are not supported ({pid!r})")
        if location != "cpu":
            raise DataError(f"{self._where}: storage saved on {location!r}; the published files are CPU-only")
        self.records.append((key, tag.dtype, numel))
        return ("storage", len(self.records) - 1)


def read_legacy_storage(data: bytes, where: str = "<bytes>") -> torch.Tensor:
    """Decodes one storage saved in torch's legacy ``torch.save`` format into a 1-D tensor, running no code.

    Args:
        data: the byte string (what ``torch.storage._load_from_bytes`` would receive).
        where: where it comes from, for errors.

    Raises:
        UnsafePickleError: the stream names any global except a plain storage class.
        DataError: the stream is truncated or not a legacy storage.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise DataError(f"{where}: expected the bytes of a legacy torch storage, got {type(data).__name__}")
    f = io.BytesIO(bytes(data))
    plain: dict[tuple[str, str], Any] = {}  # the header pickles hold only ints and dicts of ints/strings/bools

    def header() -> Any:
        return RestrictedUnpickler(f, plain, where).load()

    try:
        if header() != _LEGACY_MAGIC:
            raise DataError(f"{where}: not a legacy torch storage (bad magic number)")
        if header() != _LEGACY_PROTOCOL:
            raise DataError(f"{where}: unsupported legacy torch protocol version")
        sys_info = header()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
            raise DataError(f"{where}: only little-endian legacy storages are supported")
        unpickler = _StorageUnpickler(f, where)
        obj = unpickler.load()
        keys = header()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise DataError(f"{where}: corrupt or truncated legacy torch storage: {exc}") from exc
    if not (isinstance(obj, tuple) and obj[:1] == ("storage",) and len(unpickler.records) == 1):
        raise UnsafePickleError(f"{where}: the nested stream holds {type(obj).__name__}, not a single storage")
    key, dtype, numel = unpickler.records[0]
    if keys != [key]:
        raise DataError(f"{where}: storage key list {keys!r} does not match the record {key!r}")
    count = f.read(8)
    if len(count) != 8 or int.from_bytes(count, "little", signed=True) != numel:
        raise DataError(f"{where}: corrupt legacy storage: element count does not match the record ({numel})")
    nbytes = numel * torch.empty((), dtype=dtype).element_size()
    raw = f.read(nbytes)
    if len(raw) != nbytes:
        raise DataError(f"{where}: truncated legacy storage: {len(raw)} of {nbytes} bytes")
    if nbytes == 0:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(bytearray(raw), dtype=dtype).clone()


class _OuterUnpickler(RestrictedUnpickler):
    def __init__(self, file: Any, where: str) -> None:
        allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch.storage", "_load_from_bytes"): lambda b: read_legacy_storage(b, where),
        }
        super().__init__(file, allowed, where)


def load_pickled_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Reads a ``joblib.dump``/``pickle.dump`` of a tensor state dict (the published GHN-3 format), running no code.

    Args:
        path: the file.

    Returns:
        ``{key: tensor}`` in the file's order.

    Raises:
        UnsafePickleError: the pickle names a global outside ``collections.OrderedDict``,
            ``torch._utils._rebuild_tensor_v2`` and ``torch.storage._load_from_bytes`` (decoded here, never called),
            or a nested storage stream names anything but a plain storage class.
        DataError: missing, truncated or corrupt file, or a pickle that is not a ``{str: tensor}`` mapping.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"checkpoint not found: {path}")
    where = str(path)
    try:
        with path.open("rb") as fh:
            obj = _OuterUnpickler(fh, where).load()
    except DataError:  # UnsafePickleError included; messages name the file
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise DataError(f"{where} is not a readable pickled state dict (corrupt or truncated?): {exc!r}") from exc
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise DataError(f"{where}: expected a pickled {{name: tensor}} state dict, got {type(obj).__name__}")
    return dict(obj)
