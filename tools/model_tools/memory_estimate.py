"""Estimate a generation's peak GPU memory without a GPU: run its phases on the meta device
(shapes only, nothing computed) and follow every tensor the operations create until it dies.

The estimate models a CUDA run: fused attention keeps only its output (no score matrix; the
`FusedAttention` mode, scoped to the estimate's own block and thread) and the norms take
half-precision inputs as they are (ldm.modules.normalization treats a meta tensor as a GPU
tensor, whose kernels accumulate in float32). It
leaves out what PyTorch's caching allocator adds (rounding, fragmentation) and the CUDA
context, so the allocator's measured peak (`torch.cuda.max_memory_allocated`) is a little higher.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree
from torch.utils._python_dispatch import TorchDispatchMode

from ldm.generate import prepare_conditioning
from ldm.models.syncdreamer import LATENT_CHANNELS, WAITING_PARTS

GB = 1e9


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the tensors that operations create, while they are alive, and their peak."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(result.alias_info is not None for result in func._schema.returns):
            return out   # a view or an in-place result: no new memory
        for tensor in _pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                size = tensor.untyped_storage().nbytes()
                self.live += size
                self.peak = max(self.peak, self.live)
                weakref.finalize(tensor, self._release, size)
        return out

    def _release(self, size: int) -> None:
        self.live -= size


class FusedAttention(TorchFunctionMode):
    """Inside the block, `scaled_dot_product_attention` on meta tensors allocates only its output,
    as the fused GPU kernels do; on the meta device PyTorch would take its math form, which builds
    the whole score matrix. A torch function mode is thread-local and ends with the block, so
    nothing else in the process sees the change (and real tensors are never touched)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention:
            query, value = _query_and_value(*args, **kwargs)
            if query.is_meta:
                return query.new_empty(*query.shape[:-1], value.shape[-1])
        return func(*args, **kwargs)


def _query_and_value(query, key, value, *args, **kwargs):
    return query, value


@dataclass
class MemoryEstimate:
    weights_gb: float          # on the GPU throughout (in low-memory mode: the sampler's parts)
    peak_gb: float             # weights plus the largest phase's activations (and visiting parts)
    phases_gb: dict[str, float]  # each phase's peak of activations, and of visiting weights


def estimate_generation_memory(config, dtype: torch.dtype = torch.float16, samples: int = 1,
                               batch_view_num: int = 16, cfg_scale: float = 2.0,
                               low_memory: bool = False) -> MemoryEstimate:
    """Peak GPU memory of one generation of `samples` samples of the model `config` describes."""
    from ldm.models.syncdreamer import build_model

    model = build_model(config, device="meta", dtype=dtype)
    waiting = [getattr(model, name) for name in WAITING_PARTS]
    all_weights = _bytes(model)
    weights = all_weights - (sum(_bytes(part) for part in waiting) if low_memory else 0)
    size, image_size = model.latent_size, model.image_size
    image = torch.empty(1, 3, image_size, image_size, device="meta")
    posterior_noise = torch.empty(samples, LATENT_CHANNELS, size, size, device="meta")
    x_t = torch.empty(samples, model.view_num, LATENT_CHANNELS, size, size, device="meta")
    phases = {}
    with torch.no_grad(), FusedAttention():
        cond = _measure(phases, "conditioning", prepare_conditioning, model, image, 30.0, posterior_noise,
                        samples)
        constants = model.step_constants(cond)
        _measure(phases, "denoising step", model.predict_noise, x_t, 981, constants, cfg_scale, batch_view_num)
        _measure(phases, "decoding", model.decode_latents, posterior_noise)
    if low_memory:   # CLIP and the VAE visit the GPU for their phases
        phases["conditioning"] += sum(_bytes(part) for part in waiting) / GB
        phases["decoding"] += _bytes(model.first_stage_model) / GB
    return MemoryEstimate(weights_gb=weights / GB, peak_gb=weights / GB + max(phases.values()),
                          phases_gb=phases)


def _measure(phases: dict, name: str, run, *args):
    tracker = LiveTensorBytes()
    with tracker:
        result = run(*args)
    phases[name] = tracker.peak / GB
    return result


def _bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])
