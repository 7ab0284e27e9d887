"""Optional speed-ups that leave the model's function unchanged: the channels-last memory layout
for the UNet's convolutions and torch.compile of the UNet (with CUDA graphs in the
"reduce-overhead" mode). Both are off by default: whether they pay depends on the GPU, and
`python -m inference_server bench` measures them.
"""
from __future__ import annotations

import torch
from torch import nn

from ldm.models.syncdreamer import SyncDreamer

# "off", torch.compile's own modes; "reduce-overhead" replays the compiled UNet as CUDA graphs.
COMPILE_MODES = ("off", "default", "max-autotune", "reduce-overhead")


def apply_speed_options(model: SyncDreamer, channels_last: bool = False, compile_mode: str = "off",
                        backend: str = "inductor") -> SyncDreamer:
    """Switch the options on for `model` (in place; its state dict keys stay the same)."""
    if compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {compile_mode!r} is not one of {', '.join(COMPILE_MODES)}")
    unet = model.model.diffusion_model
    if channels_last:
        # 2-d convolution weights go NHWC; the UNet turns its input NHWC too, and convolutions
        # keep the layout. (The depth blocks' 3-d convolutions stay as they are.)
        for module in unet.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
        unet.channels_last = True
    if compile_mode != "off":
        # One compiled graph per batch shape; shapes stay the same through a generation.
        unet.compile(mode=None if compile_mode == "default" else compile_mode, backend=backend, dynamic=False)
        unet.cuda_graphs = compile_mode == "reduce-overhead"
    return model
