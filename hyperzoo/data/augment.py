"""Batched image augmentation on the device: random crop with zero padding, horizontal flip, normalization.

The standard CIFAR pipeline (``RandomCrop(32, padding=4)``, ``RandomHorizontalFlip``, ``ToTensor``,
``Normalize``) runs once per image in Python on the CPU workers. Here the same transform runs once per batch:
the batch is zero-padded once, every sample gets its own random offsets and flip bit, and a single gather with
row/column index grids builds all crops (a flip is the reversed column grid). The gather reads uint8, so the
float conversion and normalization touch only the output.

Axis legend: b batch, h height, w width, c channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["BatchAugment", "crop_flip"]


def crop_flip(images: Tensor, top: Tensor, left: Tensor, flip: Tensor, padding: int) -> Tensor:
    """Crops every image of a batch at its own offset in the zero-padded batch, flipping where asked.

    Args:
        images: uint8 (or any dtype) batch ``[b, h, w, c]``.
        top: int64 ``[b]`` row offsets into the padded image, in ``[0, 2 * padding]``.
        left: int64 ``[b]`` column offsets into the padded image, in ``[0, 2 * padding]``.
        flip: bool ``[b]``; True mirrors that crop left to right.
        padding: zero padding added on every side before cropping.

    Returns:
        The crops, ``[b, h, w, c]``, same dtype and device as ``images``.
    """
    b, h, w, _ = images.shape
    device = images.device
    # F.pad pads trailing dims first: (c: 0, 0), (w: p, p), (h: p, p).
    padded = F.pad(images, (0, 0, padding, padding, padding, padding)) if padding else images
    hp, wp = h + 2 * padding, w + 2 * padding
    top, left, flip = top.to(device), left.to(device), flip.to(device)
    rows = top[:, None] + torch.arange(h, device=device)  # [b, h]
    cols = left[:, None] + torch.arange(w, device=device)  # [b, w]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    # One flat pixel index per output pixel: index_select of whole pixels is several times faster than
    # three-tensor advanced indexing on CPU.
    batch = torch.arange(b, device=device)
    pixel = (batch[:, None, None] * hp + rows[:, :, None]) * wp + cols[:, None, :]  # [b, h, w]
    out = rearrange(padded, "b h w c -> (b h w) c").index_select(0, pixel.reshape(-1))
    return rearrange(out, "(b h w) c -> b h w c", b=b, h=h, w=w)


class BatchAugment(nn.Module):
    """Vectorized random crop with zero padding, horizontal flip and normalization of a uint8 batch.

    Equivalent, image by image, to torchvision's ``RandomCrop(size, padding)``, ``RandomHorizontalFlip()``,
    ``ToTensor()`` and ``Normalize(mean, std)``, but for a whole batch at once, on the batch's device.

    Args:
        mean: per-channel mean of the [0, 1]-scaled pixels.
        std: per-channel standard deviation of the [0, 1]-scaled pixels.
        padding: zero padding on every side before the random crop; 0 disables cropping.
        flip: whether training batches are mirrored left to right with probability 1/2.
        cpu_threads: intra-op threads for batches on the CPU, restored afterwards; None keeps torch's setting.
            These ops are memory-bound and short (about 1 ms for 128 CIFAR images), so with several threads
            the synchronization costs more than it saves, 3-4x more on a loaded machine (measured on 2 cores).

    Shapes:
        - input: uint8 ``[b, h, w, c]`` (channels last, as stored in the cache).
        - output: float32 ``[b, c, h, w]``, normalized, in channels-last memory format.
    """

    scale: Tensor
    shift: Tensor

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        padding: int = 4,
        flip: bool = True,
        cpu_threads: int | None = 1,
    ):
        super().__init__()
        self.cpu_threads = cpu_threads
        if len(mean) != len(std):
            raise ValueError(f"mean and std need one value per channel, got {len(mean)} and {len(std)}")
        self.padding = int(padding)
        self.flip = bool(flip)
        std_t = torch.tensor(std, dtype=torch.float32)
        # (x / 255 - mean) / std == x * scale + shift, one fused multiply-add per pixel.
        self.register_buffer("scale", (1.0 / (255.0 * std_t)).view(1, -1, 1, 1), persistent=False)
        self.register_buffer(
            "shift", (-torch.tensor(mean, dtype=torch.float32) / std_t).view(1, -1, 1, 1), persistent=False
        )

    def sample(
        self, batch_size: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Draws per-sample crop offsets and flip bits.

        Args:
            batch_size: number of samples.
            device: device of the returned tensors.
            generator: optional random generator; its device is used for drawing.

        Returns:
            ``(top, left, flip)``: int64 ``[b]``, int64 ``[b]``, bool ``[b]``.
        """
        gen_device = generator.device if generator is not None else torch.device(device)
        top = torch.randint(0, 2 * self.padding + 1, (batch_size,), generator=generator, device=gen_device)
        left = torch.randint(0, 2 * self.padding + 1, (batch_size,), generator=generator, device=gen_device)
        if self.flip:
            flip = torch.rand(batch_size, generator=generator, device=gen_device) < 0.5
        else:
            flip = torch.zeros(batch_size, dtype=torch.bool, device=gen_device)
        return top.to(device), left.to(device), flip.to(device)

    def normalize(self, images: Tensor) -> Tensor:
        """Converts uint8 ``[b, h, w, c]`` to normalized float32 ``[b, c, h, w]`` (contiguous)."""
        if self.scale.device != images.device:
            self.to(images.device)  # DataModules are not nn.Modules, so follow the batch to its device once
        b, h, w, c = images.shape
        # One contiguous uint8 -> float conversion pass, then in-place scaling (about 10x faster on CPU than
        # float() of a permuted view with out-of-place arithmetic). The result is a [b, c, h, w] view in
        # channels-last memory order, the layout in which CPU and GPU convolutions run fastest.
        out = torch.empty((b, h, w, c), dtype=torch.float32, device=images.device)
        out.copy_(images)
        out = rearrange(out, "b h w c -> b c h w")
        return out.mul_(self.scale).add_(self.shift)

    def forward(self, images: Tensor, train: bool = True, generator: torch.Generator | None = None) -> Tensor:
        """Augments (when ``train``) and normalizes a batch.

        Args:
            images: uint8 ``[b, h, w, c]``.
            train: apply random crop and flip; otherwise only normalize.
            generator: optional random generator for the offsets and flips.

        Returns:
            float32 ``[b, c, h, w]``.
        """
        if images.dim() != 4 or images.shape[-1] != self.scale.shape[1]:
            raise ValueError(
                f"BatchAugment expects a channels-last batch [b, h, w, {self.scale.shape[1]}], "
                f"got shape {tuple(images.shape)}"
            )
        threads = torch.get_num_threads()
        single = images.device.type == "cpu" and self.cpu_threads is not None and threads != self.cpu_threads
        if single and self.cpu_threads is not None:
            torch.set_num_threads(self.cpu_threads)
        try:
            if train and (self.padding or self.flip):
                top, left, flip = self.sample(images.shape[0], images.device, generator)
                images = crop_flip(images, top, left, flip, self.padding)
            return self.normalize(images)
        finally:
            if single:
                torch.set_num_threads(threads)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, flip={self.flip}"
