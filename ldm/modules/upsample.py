"""The one upsampling layer of the model: the VAE's decoder and the UNet's decoder share it.

(Their downsampling layers differ: the VAE pads asymmetrically, the UNet pads by one on every
side, and their checkpoint keys differ too, so each keeps its own.)
"""
import torch
import torch.nn.functional as F
from torch import nn


class Upsample(nn.Module):
    """Doubles the resolution: nearest-neighbour x2, then a 3x3 conv (checkpoint key `conv`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
