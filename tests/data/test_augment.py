import pytest
import torch
import torch.nn.functional as F

from hyperzoo.data import BatchAugment, crop_flip

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def reference(image: torch.Tensor, top: int, left: int, flip: bool, padding: int) -> torch.Tensor:
    """torchvision's per-image order: pad, crop, flip, ToTensor, Normalize."""
    h, w, _ = image.shape
    chw = image.permute(2, 0, 1)
    padded = F.pad(chw, (padding, padding, padding, padding))
    crop = padded[:, top : top + h, left : left + w]
    if flip:
        crop = crop.flip(-1)
    x = crop.float() / 255.0
    return (x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


@pytest.mark.parametrize("padding", [0, 2, 4])
def test_crop_flip_matches_per_image_reference(padding):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 10, 12, 3), dtype=torch.uint8, generator=g)
    aug = BatchAugment(MEAN, STD, padding=padding)
    top, left, flip = aug.sample(16, generator=torch.Generator().manual_seed(1))
    assert flip.any() and (~flip).any()
    out = aug.normalize(crop_flip(images, top, left, flip, padding))
    for i in range(16):
        ref = reference(images[i], int(top[i]), int(left[i]), bool(flip[i]), padding)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=1e-5)


def test_forward_uses_generator_and_matches_reference():
    images = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
    aug = BatchAugment(MEAN, STD)
    out = aug(images, train=True, generator=torch.Generator().manual_seed(5))
    top, left, flip = aug.sample(8, generator=torch.Generator().manual_seed(5))
    for i in range(8):
        torch.testing.assert_close(out[i], reference(images[i], int(top[i]), int(left[i]), bool(flip[i]), 4))
    again = aug(images, train=True, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, again)


def test_eval_only_normalizes():
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    out = BatchAugment(MEAN, STD)(images, train=False)
    assert (
        out.shape == (4, 3, 32, 32)
        and out.dtype == torch.float32
        and out.is_contiguous(memory_format=torch.channels_last)
    )
    for i in range(4):
        torch.testing.assert_close(out[i], reference(images[i], 4, 4, False, 4))


def test_crop_stays_inside_padding():
    images = torch.full((64, 8, 8, 3), 255, dtype=torch.uint8)
    aug = BatchAugment((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), padding=4)
    out = aug(images, train=True, generator=torch.Generator().manual_seed(0))
    # Every crop keeps at least half of the image in each direction: some ones, and zeros only from padding.
    assert ((out == 0) | (out == 1)).all()
    assert (out.sum(dim=(1, 2, 3)) > 0).all()


def test_rejects_channels_first():
    with pytest.raises(ValueError, match="channels-last"):
        BatchAugment(MEAN, STD)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    images = torch.randint(0, 256, (32, 32, 32, 3), dtype=torch.uint8)
    aug = BatchAugment(MEAN, STD)
    top, left, flip = aug.sample(32)
    cpu = aug.normalize(crop_flip(images, top, left, flip, 4))
    gpu = aug.normalize(crop_flip(images.cuda(), top, left, flip, 4))
    torch.testing.assert_close(gpu.cpu(), cpu)
