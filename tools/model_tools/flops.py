"""Analytic FLOP count of one SyncDreamer generation, from the model config alone (no tensors,
no model built), for benchmarks that report achieved FLOP/s.

Convention, that of torch.utils.flop_counter.FlopCounterMode: FLOPs = 2 x the multiply-
accumulates of matrix products (linear layers, the camera geometry's small matmuls),
convolutions (2D, 3D and transposed 3D, which multiply each *input* position by the kernel)
and attention (QK^T and attention weights x V). Not counted: biases, norms, activations,
softmax, elementwise ops, interpolation, grid_sample and the 4x4 matrix inverses.

Two counts:
* `fast_path=False`: what the reference computes. It encodes the input image once per sample;
  every step does the camera geometry and cc_projection again; the cross-attention attends over
  its one context token like any other; the unconditional guidance rows go through the
  depth-wise blocks with all-zero volumes.
* `fast_path=True`: what this repository's model executes. The input image is encoded once, the
  camera geometry and cc_projection run once per generation (`SyncDreamer.step_constants`);
  cross-attention on one token is `to_out(to_v(token))` (a softmax over one key is 1); in each
  UNet call, the unconditional rows' depth-wise blocks share one constant update, computed on a
  single map.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

from ldm.config import model_kwargs
from ldm.models.syncdreamer import LATENT_CHANNELS, VOLUME_TIME_DIM
from ldm.modules.embeddings import VIEWPOINT_DIM
from ldm.modules.unet import DepthWiseAttentionUNet
from ldm.modules.volume import VIEW_FEATURE_DIM, SpatialVolumeNet
from ldm.modules.volume_nets import NoisyTargetViewEncoder
from ldm.schedule import ddim_timesteps


def _defaults(cls) -> dict:
    """A constructor's keyword defaults: sizes the model takes when the config gives none."""
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


UNET_DEFAULTS = _defaults(DepthWiseAttentionUNet)
VOLUME_DEFAULTS = _defaults(SpatialVolumeNet)          # frustum_depth, spatial_size
VIEW_ENCODER_RUN_DIM = _defaults(NoisyTargetViewEncoder)["run_dim"]
DEPTH_ATTENTION_HEADS = 4      # depth_transformer_for_volume: 4 heads of width C_vol / 2
KERNEL_3X3, KERNEL_3X3X3 = 9, 27


def _conv(c_in: int, c_out: int, kernel: int, positions: int) -> int:
    """A convolution (or linear layer, kernel 1) applied at `positions` places."""
    return 2 * c_in * c_out * kernel * positions


def _attention(queries: int, keys: int, inner: int) -> int:
    """QK^T and weights x V over all heads (inner = heads x head width)."""
    return 4 * queries * keys * inner


def _halved(size: int) -> int:
    """Side after a stride-2 convolution with kernel 3 and padding 1."""
    return (size - 1) // 2 + 1


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one generation: `samples` samples of 16 views from one input image.

    `conditioning` is the work done before sampling (encoding the input image; in our code also
    the step constants), `per_step` one denoising step of all samples, `decoding` the VAE
    decoder on every view of every sample. `steps` is the number of DDIM steps actually run.
    """

    conditioning: dict[str, int]
    per_step: dict[str, int]
    decoding: int
    steps: int
    samples: int

    @property
    def step(self) -> int:
        return sum(self.per_step.values())

    @property
    def sampling(self) -> int:
        """The model work of the sampler: all steps, all samples."""
        return self.steps * self.step

    @property
    def total(self) -> int:
        return sum(self.conditioning.values()) + self.sampling + self.decoding


class ModelFlops:
    """FLOPs of each network of the model described by `config` (a path, OmegaConf or dict in
    the reference format, read by `ldm.config.model_kwargs` as `ldm.build_model` reads it)."""

    def __init__(self, config):
        kwargs = model_kwargs(config)
        self.view_num = kwargs["view_num"]
        self.image_size = kwargs["image_size"]
        self.latent_size = self.image_size // 8     # as SyncDreamer: the VAE's factor 8
        self.clip_embed_dim = kwargs["clip_embed_dim"]
        self.volume_dims = kwargs["volume_dims"]
        self.vae = kwargs["first_stage_ddconfig"]
        self.clip_sizes = kwargs["clip"]
        self.unet_sizes = {**UNET_DEFAULTS, **kwargs["unet"]}
        # Frustum volume per 3D U-Net level (= UNet level): depth and side halve together.
        depth, side = VOLUME_DEFAULTS["frustum_depth"], self.latent_size
        self.frustum_levels = []
        for _ in self.volume_dims:
            self.frustum_levels.append((depth, side))
            depth, side = _halved(depth), _halved(side)

    # ------------------------------------------------------------------ input image and views

    def vae_encoder(self) -> int:
        """Encoder and quant_conv on one image_size x image_size image."""
        c = self.vae
        size, res, ch = self.image_size, c["resolution"], c["ch"]
        flops = _conv(c["in_channels"], ch, KERNEL_3X3, size * size)
        for level, mult in enumerate(c["ch_mult"]):
            for _ in range(c["num_res_blocks"]):
                flops += self._vae_resblock(ch, c["ch"] * mult, size, res in c["attn_resolutions"])
                ch = c["ch"] * mult
            if level != len(c["ch_mult"]) - 1:
                size, res = (size - 2) // 2 + 1, res // 2   # pad right/bottom by 1, conv k3 s2
                flops += _conv(ch, ch, KERNEL_3X3, size * size)
        flops += self._vae_mid_block(ch, size)
        moments = 2 * c["z_channels"]
        flops += _conv(ch, moments, KERNEL_3X3, size * size)
        return flops + _conv(moments, 2 * LATENT_CHANNELS, 1, size * size)

    def vae_decoder(self) -> int:
        """post_quant_conv and decoder on one latent (one view of one sample)."""
        c = self.vae
        levels = len(c["ch_mult"])
        size, res = self.latent_size, c["resolution"] // 2 ** (levels - 1)
        ch = c["ch"] * c["ch_mult"][-1]
        flops = _conv(LATENT_CHANNELS, c["z_channels"], 1, size * size)
        flops += _conv(c["z_channels"], ch, KERNEL_3X3, size * size) + self._vae_mid_block(ch, size)
        for level in reversed(range(levels)):
            for _ in range(c["num_res_blocks"] + 1):
                flops += self._vae_resblock(ch, c["ch"] * c["ch_mult"][level], size,
                                            res in c["attn_resolutions"])
                ch = c["ch"] * c["ch_mult"][level]
            if level:
                size, res = size * 2, res * 2
                flops += _conv(ch, ch, KERNEL_3X3, size * size)
        return flops + _conv(ch, c["out_ch"], KERNEL_3X3, size * size)

    def _vae_resblock(self, c_in: int, c_out: int, size: int, attention: bool) -> int:
        pixels = size * size
        flops = _conv(c_in, c_out, KERNEL_3X3, pixels) + _conv(c_out, c_out, KERNEL_3X3, pixels)
        if c_in != c_out:
            flops += _conv(c_in, c_out, 1, pixels)
        return flops + (self._vae_attention(c_out, pixels) if attention else 0)

    def _vae_mid_block(self, ch: int, size: int) -> int:
        return 2 * self._vae_resblock(ch, ch, size, False) + self._vae_attention(ch, size * size)

    @staticmethod
    def _vae_attention(ch: int, pixels: int) -> int:
        """Single-head self-attention over all pixels: q, k, v, proj_out and the attention."""
        return 4 * _conv(ch, ch, 1, pixels) + _attention(pixels, pixels, ch)

    def clip(self) -> int:
        """The CLIP image tower on one image (it resizes every input to its own resolution)."""
        c = self.clip_sizes
        width, patches = c["width"], (c["image_resolution"] // c["patch_size"]) ** 2
        tokens = patches + 1                                    # plus the class token
        per_layer = (_conv(width, 3 * width, 1, tokens) + _attention(tokens, tokens, width)
                     + _conv(width, width, 1, tokens)          # out_proj
                     + 2 * _conv(width, 4 * width, 1, tokens))  # MLP
        return (_conv(3, width, c["patch_size"] ** 2, patches) + c["layers"] * per_layer
                + _conv(width, c["embed_dim"], 1, 1))

    def cc_projection(self) -> int:
        """The context token of one target view of one sample."""
        return _conv(self.clip_embed_dim + VIEWPOINT_DIM, self.clip_embed_dim, 1, 1)

    def camera_geometry(self) -> int:
        """Where each camera sees the voxels and its frustum samples (shared by all samples): per
        camera, the projection diag(r, r, 1) K @ [R|t] (3x3 @ 3x4) for each of the two grids and
        a 3x3 matrix product per point."""
        depth, side = self.frustum_levels[0]
        points = VOLUME_DEFAULTS["spatial_size"] ** 3 + depth * side * side
        return self.view_num * (2 * (2 * 3 * 3 * 4) + 2 * 3 * 3 * points)

    # ------------------------------------------------------------------ volume branch

    def time_embedding(self) -> int:
        """The volume branch's time MLP, for one sample."""
        return 2 * _conv(VOLUME_TIME_DIM, VOLUME_TIME_DIM, 1, 1)

    def view_encoder(self) -> int:
        """NoisyTargetViewEncoder on one noisy latent view."""
        pixels, run = self.latent_size ** 2, VIEW_ENCODER_RUN_DIM
        block = (_conv(VOLUME_TIME_DIM + VIEWPOINT_DIM, run, 1, 1)  # time and view 1x1 convs
                 + 2 * _conv(run, run, KERNEL_3X3, pixels))
        return (_conv(LATENT_CHANNELS, run, KERNEL_3X3, pixels) + 3 * block
                + _conv(run, VIEW_FEATURE_DIM, KERNEL_3X3, pixels))

    def _unet_3d(self, positions: list[int], condition_dim: int) -> int:
        """The 3D U-Net shared by both volume nets, at the given positions per level: blocks
        (c_in, c_out, level) whose conv runs at that level (transposed convs: at their input's),
        each conditioned by a 1x1 conv to c_in of the condition vector."""
        d = self.volume_dims
        blocks = [(d[0], d[1], 1), (d[1], d[1], 1), (d[1], d[2], 2), (d[2], d[2], 2),
                  (d[2], d[3], 3), (d[3], d[3], 3), (d[3], d[2], 3), (d[2], d[1], 2), (d[1], d[0], 1)]
        return sum(_conv(condition_dim, c_in, 1, 1) + _conv(c_in, c_out, KERNEL_3X3X3, positions[level])
                   for c_in, c_out, level in blocks)

    def spatial_volume_net(self) -> int:
        """SpatialTime3DNet on the spatial volume of one sample: the 3D U-Net, plus init_conv
        from the views' stacked features and the extra blocks conv0, conv2_1, conv4_1, conv6_1."""
        d, sides = self.volume_dims, [VOLUME_DEFAULTS["spatial_size"]]
        for _ in d[1:]:
            sides.append(_halved(sides[-1]))
        voxels = [side ** 3 for side in sides]
        extra = sum(_conv(VOLUME_TIME_DIM, dim, 1, 1) + _conv(dim, dim, KERNEL_3X3X3, voxels[level])
                    for level, dim in enumerate(d))
        return (_conv(VIEW_FEATURE_DIM * self.view_num, d[0], KERNEL_3X3X3, voxels[0]) + extra
                + self._unet_3d(voxels, VOLUME_TIME_DIM))

    def frustum_net(self) -> int:
        """FrustumTV3DNet on the frustum volume of one target view: conv0 and the 3D U-Net."""
        voxels = [depth * side * side for depth, side in self.frustum_levels]
        return (_conv(self.volume_dims[0], self.volume_dims[0], KERNEL_3X3X3, voxels[0])
                + self._unet_3d(voxels, VOLUME_TIME_DIM + VIEWPOINT_DIM))

    # ------------------------------------------------------------------ UNet

    def unet_call(self, rows: int, zero_volume_rows: int = 0, fast_path: bool = True) -> dict[str, int]:
        """One UNet call on `rows` rows, the last `zero_volume_rows` of which have all-zero volume
        features (the unconditional guidance rows): {"unet": the SD-1.x body, "depth_blocks":
        the depth-wise blocks}."""
        body, depth_row, zero_volume_update = self._unet_parts(fast_path)
        if fast_path:
            depth = (rows - zero_volume_rows) * depth_row + (zero_volume_update if zero_volume_rows else 0)
        else:
            depth = rows * depth_row
        return {"unet": rows * body, "depth_blocks": depth}

    def _unet_parts(self, fast_path: bool) -> tuple[int, int, int]:
        """Per row: the body and the depth-wise blocks over a volume; per call: the depth-wise
        blocks' shared update of zero-volume rows (fast path). Walks the layout as
        DepthWiseAttentionUNet.__init__ builds it."""
        u = self.unet_sizes
        model_ch, levels = u["model_channels"], len(u["channel_mult"])
        emb = 4 * model_ch
        side = self.latent_size

        def transformer(ch: int) -> int:
            if u["num_head_channels"] == -1:
                inner = u["num_heads"] * (ch // u["num_heads"])
            else:
                inner = (ch // u["num_head_channels"]) * u["num_head_channels"]
            return self._spatial_transformer(ch, inner, side * side, fast_path)

        def resblock(c_in: int, c_out: int) -> int:
            pixels = side * side
            flops = _conv(c_in, c_out, KERNEL_3X3, pixels) + _conv(emb, c_out, 1, 1)
            flops += _conv(c_out, c_out, KERNEL_3X3, pixels)
            return flops + (_conv(c_in, c_out, 1, pixels) if c_in != c_out else 0)

        def depth_block(dim: int, level: int) -> tuple[int, int]:
            return self._depth_transformer(dim, self.volume_dims[level], *self.frustum_levels[level], fast_path)

        body = _conv(model_ch, emb, 1, 1) + _conv(emb, emb, 1, 1)   # time_embed
        body += _conv(u["in_channels"], model_ch, KERNEL_3X3, side * side)
        skips, ch, ds = [model_ch], model_ch, 1
        for level, mult in enumerate(u["channel_mult"]):
            for _ in range(u["num_res_blocks"]):
                body += resblock(ch, model_ch * mult)
                ch = model_ch * mult
                body += transformer(ch) if ds in u["attention_resolutions"] else 0
                skips.append(ch)
            if level != levels - 1:
                side, ds = _halved(side), ds * 2
                body += _conv(ch, ch, KERNEL_3X3, side * side)
                skips.append(ch)
        body += 2 * resblock(ch, ch) + transformer(ch)
        depth_row, zero_volume_update = depth_block(ch, levels - 1)
        for level, mult in reversed(list(enumerate(u["channel_mult"]))):
            for i in range(u["num_res_blocks"] + 1):
                body += resblock(ch + skips.pop(), model_ch * mult)
                ch = model_ch * mult
                body += transformer(ch) if ds in u["attention_resolutions"] else 0
                level_after = level
                if level and i == u["num_res_blocks"]:
                    side, ds, level_after = side * 2, ds // 2, level - 1
                    body += _conv(ch, ch, KERNEL_3X3, side * side)
                if level != levels - 1:
                    row, shared = depth_block(ch, level_after)
                    depth_row, zero_volume_update = depth_row + row, zero_volume_update + shared
        body += _conv(ch, u["out_channels"], KERNEL_3X3, side * side)
        return body, depth_row, zero_volume_update

    def _spatial_transformer(self, ch: int, inner: int, pixels: int, fast_path: bool) -> int:
        """proj_in, transformer_depth blocks (self-attention, cross-attention on the one context
        token, GEGLU feed-forward) and proj_out, on one row."""
        context = self.clip_embed_dim
        self_attention = 4 * _conv(inner, inner, 1, pixels) + _attention(pixels, pixels, inner)
        if fast_path:   # to_v and to_out on the token only
            cross_attention = _conv(context, inner, 1, 1) + _conv(inner, inner, 1, 1)
        else:           # to_q and to_out on every pixel, to_k and to_v on the token
            cross_attention = (2 * _conv(inner, inner, 1, pixels) + 2 * _conv(context, inner, 1, 1)
                               + _attention(pixels, 1, inner))
        feed_forward = _conv(inner, 8 * inner, 1, pixels) + _conv(4 * inner, inner, 1, pixels)
        block = self_attention + cross_attention + feed_forward
        return 2 * _conv(ch, inner, 1, pixels) + self.unet_sizes["transformer_depth"] * block

    @staticmethod
    def _depth_transformer(dim: int, volume_ch: int, depth: int, side: int,
                           fast_path: bool) -> tuple[int, int]:
        """A DepthTransformer: (one row over its volume, the shared update of zero-volume rows:
        proj_context on two voxels (GroupNorm refuses one value per channel), to_v and to_out
        on one and proj_out on one map).

        The reference projects k and v over the whole volume; the fast path folds W_k into the
        query and W_v into the output (ldm.modules.depth_attention.attend_over_depth) and
        attends with C-wide products, `heads` queries per pixel."""
        heads = DEPTH_ATTENTION_HEADS
        inner = heads * (volume_ch // 2)
        pixels, voxels = side * side, depth * side * side
        proj_out = _conv(inner, inner, KERNEL_3X3, pixels) + _conv(inner, dim, KERNEL_3X3, pixels)
        if fast_path:   # fold W_k, attention over C-wide keys and values, fold W_v
            attention = 2 * _conv(inner, volume_ch, 1, pixels) + _attention(pixels * heads, depth, volume_ch)
        else:
            attention = 2 * _conv(volume_ch, inner, 1, voxels) + _attention(pixels, depth, inner)
        row = (_conv(dim, inner, 1, pixels)                                   # proj_in
               + _conv(volume_ch, volume_ch, 1, voxels)                       # proj_context
               + _conv(inner, inner, 1, pixels) + attention                   # to_q, k, v, attention
               + _conv(inner, inner, 1, pixels)                               # to_out
               + proj_out)
        zero_volume_update = (_conv(volume_ch, volume_ch, 1, 2) + _conv(volume_ch, inner, 1, 1)
                              + _conv(inner, inner, 1, 1) + proj_out)
        return row, zero_volume_update

    # ------------------------------------------------------------------ one generation

    def generation(self, steps: int = 50, cfg_scale: float = 2.0, samples: int = 1,
                   batch_view_num: int = 8, fast_path: bool = True) -> FlopCount:
        """FLOPs of `ldm.generate` with these arguments for one input image.

        The DDIM steps run are `len(ddim_timesteps(steps))`: the reference's uniform spacing can
        run one more than asked (30 -> 31). Views go through the UNet `batch_view_num` at a time,
        with guidance (cfg_scale != 1) a conditional and an unconditional row per view.
        """
        views = self.view_num * samples
        guided = cfg_scale != 1.0
        per_step = {
            "time_embedding": samples * self.time_embedding(),
            "view_encoder": views * self.view_encoder(),
            "spatial_volume_net": samples * self.spatial_volume_net(),
            "frustum_net": views * self.frustum_net(),
            "unet": 0,
            "depth_blocks": 0,
        }
        for start in range(0, self.view_num, batch_view_num):
            rows = samples * min(batch_view_num, self.view_num - start)
            call = self.unet_call(2 * rows if guided else rows, rows if guided else 0, fast_path)
            per_step["unet"] += call["unet"]
            per_step["depth_blocks"] += call["depth_blocks"]
        # The reference encodes the input image repeated for every sample.
        encodings = 1 if fast_path else samples
        conditioning = {"vae_encoder": encodings * self.vae_encoder(), "clip": encodings * self.clip()}
        # The reference redoes what only depends on the cameras and the input every step.
        step_constants = {"cc_projection": views * self.cc_projection(),
                          "camera_geometry": self.camera_geometry()}
        if fast_path:
            conditioning.update(step_constants)
        else:
            per_step.update(step_constants)
        return FlopCount(conditioning=conditioning, per_step=per_step, decoding=views * self.vae_decoder(),
                         steps=len(ddim_timesteps(steps)), samples=samples)


def count_generation_flops(config, steps: int = 50, cfg_scale: float = 2.0, samples: int = 1,
                           batch_view_num: int = 8, fast_path: bool = True) -> FlopCount:
    """FLOPs of one generation (see `ModelFlops.generation`) of the model `config` describes."""
    return ModelFlops(config).generation(steps, cfg_scale, samples, batch_view_num, fast_path)
