"""Normalisation layers that compute their statistics in float32.

Every network of the model uses these, so that half-precision (float16/bfloat16) runs keep the
accuracy of the statistics; in float32 they are exactly torch's GroupNorm and LayerNorm.
"""
import torch
import torch.nn.functional as F
from torch import nn


class GroupNormFloat32(nn.GroupNorm):
    """GroupNorm whose statistics are computed in float32, so half-precision runs stay stable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = F.group_norm(x.float(), self.num_groups, weight, bias, self.eps)
        return out.to(x.dtype)


class LayerNormFloat32(nn.LayerNorm):
    """LayerNorm computed in float32, so half-precision runs keep their accuracy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(),
                           self.bias.float(), self.eps)
        return out.to(x.dtype)
