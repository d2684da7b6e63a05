import random

import pytest
import torch

from hyperzoo.errors import ConfigError
from hyperzoo.smash.space import Architecture, Block, Op, SMASHSpace


def test_encode_decode_roundtrip_many_samples():
    space = SMASHSpace()
    rng = random.Random(0)
    for _ in range(100):
        arch = space.sample(rng)
        c = space.encode(arch)
        assert c.shape == space.encoding_shape
        assert space.decode(c) == arch


def test_roundtrip_other_space_and_json():
    space = SMASHSpace(
        base=4,
        max_units=3,
        bank_sizes=(1, 2, 3),
        max_banks=4,
        min_ops=1,
        max_ops=3,
        blocks=2,
        max_reads=2,
        kernels=(1, 3, 5, 7),
        dilations=(1,),
        groups=(1, 2),
    )
    for seed in range(30):
        arch = space.sample(seed)
        assert space.decode(space.encode(arch)) == arch
        assert Architecture.from_dict(arch.to_dict()) == arch


def test_encoding_layout():
    space = SMASHSpace()
    arch = Architecture(tuple(
        Block(2, (Op((0,), (1,), 2, 3, 1, 1), Op((0, 1), (2,), 3, 5, 2, 1))) for _ in range(3)
    ))  # fmt: skip
    c = space.encode(arch)
    names = space.channel_names
    assert set(c.unique().tolist()) == {-1.0, 1.0}
    used = c[names.index("used"), 0]
    assert int((used > 0).sum()) == 3 * (2 + 4)  # per block: op 0 reads 1 bank of 2 units, op 1 reads 2 banks
    # rows beyond an op's units are all -1
    assert bool((c[:, 2:, 0] == -1).all()) and bool((c[:, :2, 0] == 1).any())
    assert c[names.index("read=1"), 0, 4] == 1 and c[names.index("read=0"), 0, 2] == 1
    assert c[names.index("op_start"), 0, 2] == 1 and c[names.index("op_start"), 0, 3] == -1


def test_sampling_is_seeded():
    space = SMASHSpace()
    assert space.sample(3) == space.sample(3)
    assert space.sample(3) != space.sample(4)


def test_invalid_encodings_raise():
    space = SMASHSpace()
    c = space.encode(space.sample(0))
    with pytest.raises(ConfigError, match="shape"):
        space.decode(c[:, :, :10])
    bad = c.clone()
    bad[0, 0, 0] = 0.5
    with pytest.raises(ConfigError, match="-1 and"):
        space.decode(bad)
    bad = c.clone()
    bad[space.channel_names.index("kernel=3"), :, 0] = 1
    bad[space.channel_names.index("kernel=5"), :, 0] = 1
    with pytest.raises(ConfigError, match="exactly one"):
        space.decode(bad)
    with pytest.raises(ConfigError):
        space.decode(torch.full(space.encoding_shape, -1.0))


def test_invalid_architectures_raise():
    space = SMASHSpace()
    good = space.sample(0)
    with pytest.raises(ConfigError, match="blocks"):
        space.validate(Architecture(good.blocks[:2]))
    b0 = good.blocks[0]
    cases = {
        "only banks": Op((1,), (1,), 1, 3, 1, 1),  # reads a bank not yet written
        "allocated in order": Op((0,), (2,), 1, 3, 1, 1),  # skips bank 1
        "groups": Op((0,), (1,), 1, 3, 1, 3),
        "kernel": Op((0,), (1,), 1, 4, 1, 1),
    }
    for message, op in cases.items():
        arch = Architecture((Block(b0.bank_size, (op, *b0.ops[1:])), *good.blocks[1:]))
        with pytest.raises(ConfigError, match=message):
            space.validate(arch)
    with pytest.raises(ConfigError):
        SMASHSpace(kernels=(2,))
    with pytest.raises(ConfigError):
        Architecture.from_dict({"blocks": [{"ops": []}]})
