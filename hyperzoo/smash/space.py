"""SMASH's memory-bank network space and its architecture encoding tensor.

Brock, Lim, Ritchie, Weston. "SMASH: One-Shot Model Architecture Search through HyperNetworks", ICLR 2018.

A network is a stem, ``blocks`` blocks at halving resolutions separated by transitions, and a classifier. Inside
block ``b`` the feature map is a list of **memory banks** of ``bank_size * base`` channels each; the block input is
written to bank 0. Each **op** of a block

1. reads: concatenates the banks in ``reads`` (``nch = len(reads) * bank_size * base`` channels);
2. applies a 1x1 convolution ``nch -> units * base`` whose weights the SMASH hypernet generates;
3. applies a ``kernel x kernel`` convolution (``dilation``, ``groups``) ``units * base -> bank_size * base`` whose
   weights are learned directly and shared by all architectures (sliced from one max-size tensor per block);
4. writes: adds its output to every bank in ``writes`` (a bank not yet written starts at zero; new banks are
   allocated in order).

The block output is the concatenation of its banks. A ResNet block reads and writes the same bank, a DenseNet
block reads all banks and writes a new one; mixed patterns give FractalNet-like paths.

**Encoding** (:func:`encode`): a ``[channels, max_units, columns]`` tensor of ``-1`` / ``+1``. Column ``s`` stands for
the ``s``-th group of ``base`` input channels along the concatenated input axis of all 1x1 convolutions (ops in
order, each op's read banks in order), row ``j`` for the ``j``-th group of ``base`` output channels. Cell ``(j, s)``
describes the ``base x base`` weight block the hypernet emits for it: the channels listed in
:data:`ENCODING_CHANNELS` are ``+1`` where they apply (the column is used; it starts an op; the block; the block's
bank size; the bank this column reads; the op's write set; its units, kernel, dilation, groups) and ``-1`` elsewhere;
rows ``j >= units`` and unused columns are all ``-1``. :func:`decode` inverts it exactly, and raises
:class:`~hyperzoo.errors.ConfigError` for a tensor that does not fit the space.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from hyperzoo.errors import ConfigError

__all__ = ["Architecture", "Block", "Op", "SMASHSpace"]


@dataclass(frozen=True)
class Op:
    """One op of a block: read banks, generated 1x1 conv to ``units * base``, shared kxk conv, write banks."""

    reads: tuple[int, ...]
    writes: tuple[int, ...]
    units: int
    kernel: int
    dilation: int
    groups: int


@dataclass(frozen=True)
class Block:
    """A block: its bank size (in units of ``base`` channels) and its ops in order."""

    bank_size: int
    ops: tuple[Op, ...]

    @property
    def num_banks(self) -> int:
        """Banks written by the block (bank 0 holds the block input)."""
        return 1 + max((w for op in self.ops for w in op.writes), default=0)


@dataclass(frozen=True)
class Architecture:
    """A network of the space: one :class:`Block` per resolution."""

    blocks: tuple[Block, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"blocks": [asdict(b) for b in self.blocks]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Architecture:
        try:
            blocks = tuple(
                Block(
                    int(b["bank_size"]),
                    tuple(
                        Op(tuple(o["reads"]), tuple(o["writes"]), o["units"], o["kernel"], o["dilation"], o["groups"])
                        for o in b["ops"]
                    ),
                )
                for b in d["blocks"]
            )
        except (KeyError, TypeError) as e:
            raise ConfigError(f"not a SMASH architecture dictionary (missing or bad key {e}); got {d!r:.200}") from None
        return cls(blocks)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @property
    def num_ops(self) -> int:
        return sum(len(b.ops) for b in self.blocks)


@dataclass(frozen=True)
class SMASHSpace:
    """The memory-bank space: sizes, choices, sampling, validation and the encoding.

    Args:
        base: ``N``, channels per unit (bank sizes and 1x1 widths are multiples of it; SMASH: 8).
        max_units: ``k``, largest 1x1 output width in units; rows of the encoding.
        bank_sizes: allowed bank sizes in units.
        max_banks: banks per block.
        min_ops, max_ops: ops per block.
        blocks: number of blocks (resolutions).
        max_reads, max_writes: banks an op reads / writes at most.
        kernels, dilations, groups: the kxk conv options.
    """

    base: int = 8
    max_units: int = 4
    bank_sizes: tuple[int, ...] = (1, 2)
    max_banks: int = 6
    min_ops: int = 2
    max_ops: int = 4
    blocks: int = 3
    max_reads: int = 3
    max_writes: int = 2
    kernels: tuple[int, ...] = (3, 5)
    dilations: tuple[int, ...] = (1, 2)
    groups: tuple[int, ...] = (1, 2, 4)

    def __post_init__(self) -> None:
        ints = {
            "base": self.base, "max_units": self.max_units, "max_banks": self.max_banks, "min_ops": self.min_ops,
            "blocks": self.blocks, "max_reads": self.max_reads, "max_writes": self.max_writes,
        }  # fmt: skip
        bad = [k for k, v in ints.items() if int(v) < 1]
        if bad or self.max_ops < self.min_ops or not self.bank_sizes or not self.kernels:
            raise ConfigError(f"SMASHSpace: invalid sizes {ints} (max_ops={self.max_ops}); all must be >= 1")
        if any(k % 2 == 0 for k in self.kernels):
            raise ConfigError(f"SMASHSpace: kernels must be odd, got {self.kernels}")
        if self.max_banks < 2:
            raise ConfigError("SMASHSpace: max_banks must be >= 2 (bank 0 holds the block input)")
        for name in ("bank_sizes", "kernels", "dilations", "groups"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))

    # ------------------------------------------------------------------ sizes
    @property
    def config(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @property
    def max_bank_size(self) -> int:
        return max(self.bank_sizes)

    @property
    def max_kernel(self) -> int:
        return max(self.kernels)

    @property
    def columns(self) -> int:
        """Columns of the encoding: the largest total 1x1 input width of any architecture, in units."""
        return self.blocks * self.max_ops * self.max_reads * self.max_bank_size

    @property
    def channel_names(self) -> list[str]:
        """Names of the encoding channels, in order (see the module docstring)."""
        names = ["used", "op_start"]
        names += [f"block={b}" for b in range(self.blocks)]
        names += [f"bank_size={s}" for s in self.bank_sizes]
        names += [f"read={r}" for r in range(self.max_banks)]
        names += [f"write={w}" for w in range(self.max_banks)]
        names += [f"units={u}" for u in range(1, self.max_units + 1)]
        names += [f"kernel={k}" for k in self.kernels]
        names += [f"dilation={d}" for d in self.dilations]
        names += [f"groups={g}" for g in self.groups]
        return names

    @property
    def encoding_channels(self) -> int:
        return len(self.channel_names)

    @property
    def encoding_shape(self) -> tuple[int, int, int]:
        return (self.encoding_channels, self.max_units, self.columns)

    # ------------------------------------------------------------------ validity
    def allowed_groups(self, units: int, bank_size: int) -> list[int]:
        return [g for g in self.groups if (units * self.base) % g == 0 and (bank_size * self.base) % g == 0]

    def validate(self, arch: Architecture) -> Architecture:
        """Returns ``arch`` if it belongs to the space, else raises :class:`ConfigError` saying which op is wrong."""
        if len(arch.blocks) != self.blocks:
            raise ConfigError(f"architecture has {len(arch.blocks)} blocks, the space has {self.blocks}")
        for b, block in enumerate(arch.blocks):
            where = f"block {b}"
            if block.bank_size not in self.bank_sizes:
                raise ConfigError(f"{where}: bank_size {block.bank_size} not in {self.bank_sizes}")
            if not self.min_ops <= len(block.ops) <= self.max_ops:
                raise ConfigError(f"{where}: {len(block.ops)} ops, the space allows {self.min_ops}..{self.max_ops}")
            written = 1
            for i, op in enumerate(block.ops):
                w = f"{where} op {i}"
                if not op.reads or len(op.reads) > self.max_reads or list(op.reads) != sorted(set(op.reads)):
                    raise ConfigError(f"{w}: reads {op.reads} must be 1..{self.max_reads} distinct sorted banks")
                if max(op.reads) >= written or min(op.reads) < 0:
                    raise ConfigError(f"{w}: reads {op.reads} but only banks 0..{written - 1} hold data")
                if not op.writes or len(op.writes) > self.max_writes or list(op.writes) != sorted(set(op.writes)):
                    raise ConfigError(f"{w}: writes {op.writes} must be 1..{self.max_writes} distinct sorted banks")
                new = [x for x in op.writes if x >= written]
                if new != list(range(written, written + len(new))) or max(op.writes) >= self.max_banks:
                    raise ConfigError(
                        f"{w}: writes {op.writes}: new banks must be allocated in order from {written} "
                        f"and stay below max_banks={self.max_banks}"
                    )
                written += len(new)
                if not 1 <= op.units <= self.max_units:
                    raise ConfigError(f"{w}: units {op.units} not in 1..{self.max_units}")
                if op.kernel not in self.kernels or op.dilation not in self.dilations:
                    raise ConfigError(f"{w}: kernel {op.kernel} / dilation {op.dilation} not in the space")
                if op.groups not in self.allowed_groups(op.units, block.bank_size):
                    raise ConfigError(
                        f"{w}: groups {op.groups} must divide both {op.units * self.base} and "
                        f"{block.bank_size * self.base} channels and be one of {self.groups}"
                    )
        return arch

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: random.Random | int | None = None) -> Architecture:
        """A random architecture (SMASH's sampler, adapted): see the module docstring for the choices.

        Widths prefer ``units`` close to the number of units read (``P(u) ~ 1 / (0.01 + 10 |u - read units|)``) and
        few writes, as in the reference sampler.
        """
        r = rng if isinstance(rng, random.Random) else random.Random(rng)
        blocks = []
        for _ in range(self.blocks):
            bs = r.choice(self.bank_sizes)
            ops = []
            written = 1
            for _ in range(r.randint(self.min_ops, self.max_ops)):
                n_reads = r.randint(1, min(self.max_reads, written))
                reads = tuple(sorted(r.sample(range(written), n_reads)))
                n_writes = 1 if r.random() < 0.7 else r.randint(1, self.max_writes)
                writes: set[int] = set()
                for _ in range(n_writes):
                    if written + len([w for w in writes if w >= written]) < self.max_banks and r.random() < 0.5:
                        writes.add(written + len([w for w in writes if w >= written]))
                    else:
                        writes.add(r.randrange(written))
                read_units = n_reads * bs
                units_w = [
                    1.0 / (0.01 + 10 * abs(u - min(read_units, self.max_units))) for u in range(1, self.max_units + 1)
                ]
                units = r.choices(range(1, self.max_units + 1), weights=units_w)[0]
                ops.append(
                    Op(
                        reads,
                        tuple(sorted(writes)),
                        units,
                        r.choice(self.kernels),
                        r.choice(self.dilations),
                        r.choice(self.allowed_groups(units, bs)),
                    )
                )
                written += len([w for w in writes if w >= written])
            blocks.append(Block(bs, tuple(ops)))
        return self.validate(Architecture(tuple(blocks)))

    # ------------------------------------------------------------------ encoding
    def column_layout(self, arch: Architecture) -> list[list[tuple[int, int]]]:
        """Per block, per op: ``(first column, number of columns)`` of its 1x1 weight along the input axis."""
        out, col = [], 0
        for block in arch.blocks:
            spans = []
            for op in block.ops:
                n = len(op.reads) * block.bank_size
                spans.append((col, n))
                col += n
            out.append(spans)
        return out

    def encode(self, arch: Architecture) -> Tensor:
        """The ``[channels, max_units, columns]`` encoding tensor of ``arch`` (module docstring)."""
        self.validate(arch)
        names = {n: i for i, n in enumerate(self.channel_names)}
        c = torch.full(self.encoding_shape, -1.0)
        for b, (block, spans) in enumerate(zip(arch.blocks, self.column_layout(arch))):
            for op, (start, n) in zip(block.ops, spans):
                vec = torch.full((self.encoding_channels,), -1.0)
                active = [
                    "used", f"block={b}", f"bank_size={block.bank_size}", f"units={op.units}", f"kernel={op.kernel}",
                    f"dilation={op.dilation}", f"groups={op.groups}", *[f"write={w}" for w in op.writes],
                ]  # fmt: skip
                vec[[names[a] for a in active]] = 1.0
                for s in range(n):
                    col = vec.clone()
                    col[names[f"read={op.reads[s // block.bank_size]}"]] = 1.0
                    if s == 0:
                        col[names["op_start"]] = 1.0
                    c[:, : op.units, start + s] = col[:, None]
        return c

    def decode(self, c: Tensor) -> Architecture:
        """The architecture encoded by ``c``; raises :class:`ConfigError` if ``c`` does not fit this space."""
        if tuple(c.shape) != self.encoding_shape:
            raise ConfigError(
                f"SMASH encoding has shape {tuple(c.shape)} but this space needs {self.encoding_shape} "
                "(channels, max_units, columns); was it made for another space?"
            )
        if not bool(((c == 1) | (c == -1)).all()):
            raise ConfigError("SMASH encoding must contain only -1 and +1 entries")
        names = self.channel_names
        idx = {n: i for i, n in enumerate(names)}

        def one(col: Tensor, prefix: str, where: str) -> str:
            hits = [names[i].split("=")[1] for i in range(len(names)) if names[i].startswith(prefix) and col[i] > 0]
            if len(hits) != 1:
                raise ConfigError(f"SMASH encoding, {where}: expected exactly one '{prefix}*' channel set, got {hits}")
            return hits[0]

        row0 = c[:, 0, :]
        used = (row0[idx["used"]] > 0).tolist()
        n_used = sum(used)
        if any(used[n_used:]) or not all(used[:n_used]):
            raise ConfigError("SMASH encoding: used columns must come first, without gaps")
        raw_ops: list[tuple[int, int, Op, list[int]]] = []  # (block, bank size, op, reads per column)
        for s in range(n_used):
            col = row0[:, s]
            where = f"column {s}"
            b = int(one(col, "block=", where))
            bs = int(one(col, "bank_size=", where))
            read = int(one(col, "read=", where))
            units = int(one(col, "units=", where))
            writes = tuple(w for w in range(self.max_banks) if col[idx[f"write={w}"]] > 0)
            op = Op((), writes, units, int(one(col, "kernel=", where)), int(one(col, "dilation=", where)),
                    int(one(col, "groups=", where)))  # fmt: skip
            expected = torch.full_like(c[:, :, s], -1.0)
            expected[:, :units] = col[:, None]
            if not torch.equal(c[:, :, s], expected):
                raise ConfigError(f"SMASH encoding, {where}: rows 0..{units - 1} must repeat row 0 and the rest be -1")
            if col[idx["op_start"]] > 0:
                raw_ops.append((b, bs, op, [read]))
            else:
                if not raw_ops:
                    raise ConfigError("SMASH encoding: column 0 must start an op")
                pb, pbs, pop, reads = raw_ops[-1]
                if (pb, pbs, pop) != (b, bs, op):
                    raise ConfigError(f"SMASH encoding, {where}: continues an op but describes a different one")
                reads.append(read)
        blocks: list[list[Op]] = [[] for _ in range(self.blocks)]
        sizes: list[int | None] = [None] * self.blocks
        last_block = 0
        for b, bs, op, reads in raw_ops:
            if b < last_block:
                raise ConfigError("SMASH encoding: blocks must appear in order")
            last_block = b
            if sizes[b] not in (None, bs):
                raise ConfigError(f"SMASH encoding: block {b} has two bank sizes")
            sizes[b] = bs
            if len(reads) % bs or any(len(set(reads[i : i + bs])) != 1 for i in range(0, len(reads), bs)):
                raise ConfigError(f"SMASH encoding: block {b} op reads {reads} do not cover whole banks of size {bs}")
            banks = tuple(reads[::bs])
            blocks[b].append(Op(banks, op.writes, op.units, op.kernel, op.dilation, op.groups))
        if any(s is None for s in sizes):
            raise ConfigError(f"SMASH encoding: blocks {[i for i, s in enumerate(sizes) if s is None]} have no ops")
        arch = Architecture(tuple(Block(int(s), tuple(ops)) for s, ops in zip(sizes, blocks)))  # type: ignore[arg-type]
        return self.validate(arch)

    def encode_batch(self, archs: Sequence[Architecture]) -> Tensor:
        """``[B, channels, max_units, columns]``."""
        return torch.stack([self.encode(a) for a in archs])

    def num_weight_entries(self) -> int:
        """Entries of the generated 1x1 weight matrix ``[max_units * base, columns * base]``."""
        return self.max_units * self.base * self.columns * self.base
