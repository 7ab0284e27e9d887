"""The SyncDreamer model (reference `SyncMultiviewDiffusion`): every module of the official
checkpoint under its key, and the noise prediction of one denoising step for all 16 views.

The sampler lives in `ldm.samplers`, the run (noise, guidance settings, decoding) in
`ldm.generate`; this module only computes eps = f(x_t, t, conditioning).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ldm.modules.autoencoder import AutoencoderKL
from ldm.modules.clip_vision import CLIPImageEncoder
from ldm.modules.embeddings import (VIEWPOINT_DIM, time_mlp, timestep_embedding, viewpoint_embedding,
                                    wrap_azimuth)
from ldm.modules.unet import DepthWiseAttentionUNet
from ldm.modules.volume import SpatialVolumeNet
from ldm.schedule import ddpm_buffers, scaled_linear_betas

LATENT_SCALE = 0.18215       # SD-1.x latent scale factor
LATENT_CHANNELS = 4
VOLUME_TIME_DIM = 256        # time embedding of the volume branch
SCHEDULE_BUFFERS = ("betas", "alphas", "alphas_cumprod", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "posterior_variance",
                    "posterior_log_variance_clipped")
CAMERA_BUFFERS = ("poses", "Ks", "azimuth")
FLOAT32_BUFFERS = frozenset(SCHEDULE_BUFFERS + CAMERA_BUFFERS)
WAITING_PARTS = ("clip_image_encoder", "first_stage_model")  # idle while the sampler runs


@dataclass
class Conditioning:
    """What one input view gives the denoiser, per sample b."""

    x_input: torch.Tensor      # (B, 4, h, w) latent of the input image, scaled by 0.18215
    clip_embed: torch.Tensor   # (B, 1, E) CLIP image embedding
    elevation: torch.Tensor    # (B,) input elevation in radians, float32


@dataclass
class StepConstants:
    """What the denoiser needs besides x_t and t that stays the same over all steps of one
    generation: computed once by `SyncDreamer.step_constants`, not at every step."""

    x_input: torch.Tensor       # (B, 4, h, w) input latent, scaled by 0.18215
    v_embed: torch.Tensor       # (B, N, 4) camera deltas from the input view to every target, float32
    context: torch.Tensor       # (B, N, 1, E) cc_projection(CLIP embedding, view delta) per target view
    spatial_grid: torch.Tensor  # (N, V, V*V, 2) where each camera sees each voxel
    frustum_grid: torch.Tensor  # (N, D, h, w, 3) each target's frustum samples in the volume


class UNetWrapper(nn.Module):
    """Feeds the UNet [x_t, unscaled input latent] and applies classifier-free guidance."""

    def __init__(self, unet: DepthWiseAttentionUNet):
        super().__init__()
        self.diffusion_model = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                volume_feats: Mapping[int, torch.Tensor], x_concat: torch.Tensor,
                zero_volume_rows: int = 0) -> torch.Tensor:
        """eps for rows of x; the last `zero_volume_rows` rows have all-zero volume features,
        which `volume_feats` leaves out (it holds the other rows only)."""
        # zero123 conditions on the unscaled latent: undo the 0.18215.
        dtype = self.diffusion_model.dtype
        if self.diffusion_model.cuda_graphs:
            # Each call starts a new CUDA-graph replay: the last call's output has been used up.
            torch.compiler.cudagraph_mark_step_begin()
        unet_input = torch.cat([x.to(dtype), (x_concat.float() / LATENT_SCALE).to(dtype)], dim=1)
        return self.diffusion_model(unet_input, t, context, volume_feats, zero_volume_rows)

    def predict_with_cfg(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor,
                         volume_feats: Mapping[int, torch.Tensor], x_concat: torch.Tensor,
                         scale: float) -> torch.Tensor:
        """uncond + scale * (cond - uncond); uncond zeroes context, volume features and latent.

        Both branches go through the UNet in one call. The unconditional rows' zero volume
        features are not built: the depth-wise blocks know their (constant) result."""
        doubled = lambda c: torch.cat([c, torch.zeros_like(c)], dim=0)  # noqa: E731
        eps = self(torch.cat([x, x], dim=0), torch.cat([t, t], dim=0), doubled(context),
                   volume_feats, doubled(x_concat), zero_volume_rows=x.shape[0])
        cond, uncond = eps.chunk(2, dim=0)
        return uncond + scale * (cond - uncond)


class SyncDreamer(nn.Module):
    """Keys and shapes as the reference's state dict (minus CLIP's text-side leftovers)."""

    def __init__(self, *, view_num: int, image_size: int, clip_embed_dim: int, volume_dims,
                 first_stage_ddconfig: Mapping, unet: Mapping, clip: Mapping):
        super().__init__()
        self.view_num = view_num
        self.image_size = image_size
        self.latent_size = image_size // 8
        for name, value in ddpm_buffers(scaled_linear_betas()).items():
            self.register_buffer(name, value)
        # Filled by the checkpoint, or by set_cameras for a model without one.
        self.register_buffer("poses", torch.zeros(view_num, 3, 4))
        self.register_buffer("Ks", torch.zeros(view_num, 3, 3))
        self.register_buffer("azimuth", torch.zeros(view_num))

        self.time_embed = time_mlp(VOLUME_TIME_DIM, VOLUME_TIME_DIM)
        self.first_stage_model = AutoencoderKL(first_stage_ddconfig, embed_dim=LATENT_CHANNELS)
        self.clip_image_encoder = CLIPImageEncoder(**clip)
        self.cc_projection = nn.Linear(clip_embed_dim + VIEWPOINT_DIM, clip_embed_dim)
        self.spatial_volume = SpatialVolumeNet(VOLUME_TIME_DIM, VIEWPOINT_DIM, view_num, volume_dims,
                                               image_size=image_size, latent_size=self.latent_size)
        self.model = UNetWrapper(DepthWiseAttentionUNet(**unet))
        self.offloading = False

    # ------------------------------------------------------------------ dtype, device, cameras

    def _apply(self, fn, recurse=True):
        # The schedule and the cameras stay float32 when the weights go to half precision.
        kept = {name: self._buffers[name] for name in FLOAT32_BUFFERS}
        super()._apply(fn, recurse)
        for name, before in kept.items():
            after = self._buffers[name]
            if after.dtype != before.dtype:
                self._buffers[name] = before.to(after.device)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.cc_projection.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.cc_projection.weight.device

    def set_cameras(self, poses: torch.Tensor, Ks: torch.Tensor, azimuth: torch.Tensor) -> None:
        """Target cameras for a model without checkpoint: world-to-camera (N, 3, 4), 256-px
        intrinsics (N, 3, 3) and azimuths in radians (N,), wrapped as the reference stores them."""
        n = self.view_num
        shapes = {"poses": (n, 3, 4), "Ks": (n, 3, 3), "azimuth": (n,)}
        for name, value in (("poses", poses), ("Ks", Ks), ("azimuth", azimuth)):
            value = torch.as_tensor(value)
            if tuple(value.shape) != shapes[name]:
                raise ValueError(f"set_cameras: {name} must have shape {shapes[name]}, got {tuple(value.shape)}")
        with torch.no_grad():
            self.poses.copy_(torch.as_tensor(poses, dtype=torch.float32))
            self.Ks.copy_(torch.as_tensor(Ks, dtype=torch.float32))
            self.azimuth.copy_(wrap_azimuth(torch.as_tensor(azimuth, dtype=torch.float32)))

    def check_cameras(self) -> None:
        if self.Ks.is_meta or not bool(torch.any(self.Ks != 0)):
            raise RuntimeError("The model has no target cameras: load a checkpoint "
                               "(ldm.load_checkpoint) or call model.set_cameras(poses, Ks, azimuth).")

    # ------------------------------------------------------------------ low-memory mode

    def offload_waiting_parts(self, enabled: bool = True) -> None:
        """Low-memory mode: CLIP and the VAE, idle while the sampler runs, wait on the CPU and
        visit the model's device only while they work. Call it once the model is on its device."""
        self.offloading = enabled
        for name in WAITING_PARTS:
            getattr(self, name).to("cpu" if enabled else self.device)

    @contextmanager
    def on_model_device(self, module: nn.Module) -> Iterator[nn.Module]:
        """`module` on the model's device for the block; back to the CPU afterwards if it waits there."""
        if not self.offloading or next(module.parameters()).device == self.device:
            yield module
            return
        module.to(self.device)
        try:
            yield module
        finally:
            module.to("cpu")

    # ------------------------------------------------------------------ input view

    def encode_posterior(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[-1, 1] image (B, 3, H, W) -> VAE posterior mean and logvar (B, 4, h, w), float32, unscaled."""
        with self.on_model_device(self.first_stage_model) as vae:
            mean, logvar = vae.encode(image.to(self.dtype).contiguous())
        return mean.float(), logvar.float()

    def embed_clip(self, image: torch.Tensor) -> torch.Tensor:
        """[-1, 1] image (B, 3, H, W) -> CLIP embedding (B, 1, E), float32."""
        with self.on_model_device(self.clip_image_encoder) as clip:
            return clip.encode(image.contiguous()).float()

    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents (B, 4, h, w) -> images (B, 3, H, W), float32, not clamped."""
        with self.on_model_device(self.first_stage_model) as vae:
            return vae.decode((z.float() / LATENT_SCALE).to(self.dtype)).float()

    # ------------------------------------------------------------------ denoiser pieces

    def viewpoint_embedding(self, elevation: torch.Tensor) -> torch.Tensor:
        """(B,) input elevation in radians -> (B, N, 4) camera deltas to every target view."""
        return viewpoint_embedding(elevation.to(self.azimuth.device), self.azimuth)

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) integer timesteps -> (B, 256) time embedding of the volume branch."""
        return self.time_embed(timestep_embedding(t, VOLUME_TIME_DIM).to(self.dtype))

    def step_constants(self, cond: Conditioning) -> StepConstants:
        """Everything of one generation that no denoising step changes, computed once."""
        v_embed = self.viewpoint_embedding(cond.elevation)
        b, n = v_embed.shape[:2]
        clip_embed = cond.clip_embed.to(self.dtype).expand(b, n, -1)
        context = self.cc_projection(torch.cat([clip_embed, v_embed.to(self.dtype)], dim=-1))
        return StepConstants(x_input=cond.x_input, v_embed=v_embed, context=context.unsqueeze(2),
                             spatial_grid=self.spatial_volume.spatial_grid(self.poses, self.Ks),
                             frustum_grid=self.spatial_volume.frustum_grid(self.poses, self.Ks))

    def target_view_inputs(self, constants: StepConstants, spatial_volume: torch.Tensor,
                           t_embed: torch.Tensor, targets: slice):
        """UNet inputs for target views `targets` of every sample, flattened sample-major:
        context (B*TN, 1, E), frustum features {width: (B*TN, C, D, w, w)}, x_concat (B*TN, 4, h, w)."""
        v_embed = constants.v_embed[:, targets]
        b, tn = v_embed.shape[:2]
        volume_feats = self.spatial_volume.construct_view_frustum_volume(
            spatial_volume, t_embed, v_embed, constants.frustum_grid[targets])
        context = constants.context[:, targets].reshape(b * tn, 1, -1)
        x_concat = constants.x_input.repeat_interleave(tn, dim=0)
        return context, volume_feats, x_concat

    def predict_noise(self, x_t: torch.Tensor, t: int, cond: Conditioning | StepConstants, cfg_scale: float,
                      batch_view_num: int) -> torch.Tensor:
        """eps for all views (B, N, 4, h, w), float32; the UNet sees `batch_view_num` views at once
        (with guidance, both branches of them in the same call).

        The spatial volume is built once from all noisy views (conditional branch only); with
        cfg_scale == 1 only the conditional pass runs. A sampler passes `step_constants(cond)`.
        """
        constants = self.step_constants(cond) if isinstance(cond, Conditioning) else cond
        b, n = x_t.shape[:2]
        timesteps = torch.full((b,), int(t), dtype=torch.long, device=x_t.device)
        t_embed = self.embed_time(timesteps)
        spatial_volume = self.spatial_volume.construct_spatial_volume(x_t, t_embed, constants.v_embed,
                                                                      constants.spatial_grid)
        eps = []
        for start in range(0, n, batch_view_num):
            targets = slice(start, min(start + batch_view_num, n))
            context, volume_feats, x_concat = self.target_view_inputs(constants, spatial_volume, t_embed, targets)
            x = x_t[:, targets].reshape(-1, *x_t.shape[2:])
            t_chunk = timesteps.repeat_interleave(x.shape[0] // b)
            if cfg_scale != 1.0:
                chunk = self.model.predict_with_cfg(x, t_chunk, context, volume_feats, x_concat, cfg_scale)
            else:
                # a copy: with CUDA graphs (ldm.speed) the next call reuses the output's memory
                chunk = self.model(x, t_chunk, context, volume_feats, x_concat).clone()
            eps.append(chunk.float().view(b, -1, *x_t.shape[2:]))
        return torch.cat(eps, dim=1)


def build_model(config, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> SyncDreamer:
    """SyncDreamer from a config (path, OmegaConf or dict in the reference format), in eval mode
    with gradients off. `device="meta"` allocates nothing (fill it with ldm.load_checkpoint)."""
    from ldm.config import model_kwargs

    kwargs = model_kwargs(config)
    with torch.device(device):
        model = SyncDreamer(**kwargs)
    model.to(dtype=dtype)
    model.requires_grad_(False)
    return model.eval()
