"""Normalisation layers that compute their statistics in float32.

Every network of the model uses these, so that half-precision (float16/bfloat16) runs keep the
accuracy of the statistics; in float32 they are exactly torch's GroupNorm and LayerNorm. On a
CUDA GPU, PyTorch's own kernels already accumulate half-precision inputs in float32 (their
accumulate type), so there the half tensor goes in directly: no float32 copy of the activations.
A meta tensor (shapes only, tools/model_tools/memory_estimate.py) stands for a GPU tensor and takes the same path.
"""
import torch
import torch.nn.functional as F
from torch import nn

HALF_TYPES = (torch.float16, torch.bfloat16)


def _kernel_accumulates_in_float32(x: torch.Tensor, weight) -> bool:
    return (x.is_cuda or x.is_meta) and x.dtype in HALF_TYPES and (weight is None or weight.dtype == x.dtype)


class GroupNormFloat32(nn.GroupNorm):
    """GroupNorm whose statistics are computed in float32, so half-precision runs stay stable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _kernel_accumulates_in_float32(x, self.weight):
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        out = F.group_norm(x.float(), self.num_groups, weight, bias, self.eps)
        return out.to(x.dtype)


class LayerNormFloat32(nn.LayerNorm):
    """LayerNorm computed in float32, so half-precision runs keep their accuracy."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _kernel_accumulates_in_float32(x, self.weight):
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(),
                           self.bias.float(), self.eps)
        return out.to(x.dtype)
