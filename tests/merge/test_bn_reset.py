"""The merge's BN reset (torch.optim.swa_utils.update_bn on the first batches): exact averages, state restored."""

import torch
from torch import nn

from hyperzoo.merge.baselines import reset_bn_stats


def test_reset_is_the_exact_average_of_the_first_batches_and_restores_the_model():
    bn = nn.BatchNorm1d(3, momentum=0.3)
    bn.running_mean.fill_(5.0)
    model = nn.Sequential(bn).eval()
    batches = [(torch.randn(8, 3) + i, torch.zeros(8)) for i in range(5)]
    assert reset_bn_stats(model, batches, num_batches=3) == 3
    expected = torch.stack([x.mean(0) for x, _ in batches[:3]]).mean(0)
    torch.testing.assert_close(bn.running_mean, expected)
    assert int(bn.num_batches_tracked) == 3 and bn.momentum == 0.3 and not model.training
    assert reset_bn_stats(model, batches[:2], num_batches=10) == 2  # fewer batches than asked


def test_reset_without_batch_norm_reads_no_batch():
    def never():
        raise AssertionError("no batch should be read")
        yield

    assert reset_bn_stats(nn.Linear(2, 2), never(), 5) == 0
