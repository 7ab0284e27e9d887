"""The analytic FLOP count (tools/model_tools/flops.py) equals what torch.utils.flop_counter.FlopCounterMode counts
when the model's own modules run: part by part on two miniatures with different sizes (CPU,
random weights, 64-px images), and phase by phase of a generation on the 256-px miniature and
the full model built on the meta device (shapes only, nothing computed).

What FlopCounterMode counts: aten mm/addmm/bmm/baddbmm and convolution (2D, 3D and transposed);
not biases, norms, softmax, elementwise ops, interpolate, grid_sample or linalg.inv. On the CPU
scaled_dot_product_attention runs as _scaled_dot_product_flash_attention_for_cpu, which it does
not count, so every count here runs under the MATH backend (QK^T and weights x V as two bmm).
The depth-wise attention runs as einsums on the CPU and as SDPA on a GPU (same count): the
checks force the fused (SDPA) form, the one a GPU runs.

Full model, one sample, 50 steps, guidance 2.0, 8 views per UNet call (test_full_model_figures
prints the breakdown with -s): reference 360.5 TFLOP (7.002 TFLOP per step); what our code
executes (fast path) 323.3 TFLOP (6.258 TFLOP per step).
"""
import copy
import re

import pytest
import torch
from omegaconf import OmegaConf
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import ldm
from inference_server.cameras import model_buffers
from model_tools.flops import ModelFlops, count_generation_flops
from ldm.generate import prepare_conditioning
from ldm.models.syncdreamer import VOLUME_TIME_DIM
from ldm.modules import depth_attention
from ldm.modules.embeddings import VIEWPOINT_DIM
from reference_forms import explicit_depth_attention_forward

VIEWS = 2      # target views per UNet call in the part checks
DEPTH_BLOCK = re.compile(r"DepthWiseAttentionUNet\.(middle_conditions|output_conditions\.\d+)")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tensors are small: one thread runs them faster, and unhurt by a busy machine
    (two threads there took several times as long)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def fused_depth_attention(monkeypatch):
    attend = depth_attention.attend_over_depth
    monkeypatch.setattr(depth_attention, "attend_over_depth",
                        lambda *args, fused: attend(*args, fused=True))


def _flop_counter(run, *args, **kwargs) -> FlopCounterMode:
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        run(*args, **kwargs)
    return counter


def counted(run, *args, **kwargs) -> int:
    return _flop_counter(run, *args, **kwargs).get_total_flops()


def counted_unet(unet, *args) -> dict[str, int]:
    """A UNet call's FLOPs split as ModelFlops.unet_call splits them."""
    counter = _flop_counter(unet, *args)
    depth = sum(sum(ops.values()) for module, ops in counter.get_flop_counts().items()
                if DEPTH_BLOCK.fullmatch(module))
    return {"unet": counter.get_total_flops() - depth, "depth_blocks": depth}


def _tiny(repo_root, image_size: int = 256) -> dict:
    config = OmegaConf.to_container(OmegaConf.load(repo_root / "configs" / "tiny.yaml"))
    config["model"]["params"]["image_size"] = image_size
    return config


def _variant(repo_root, image_size: int) -> dict:
    """A miniature with other widths, UNet heads of fixed width, attention at two levels only
    and two transformer blocks, VAE attention and a smaller CLIP."""
    config = _tiny(repo_root, image_size)
    params = config["model"]["params"]
    params.update(clip_embed_dim=32, volume_dims=[16, 16, 32, 32])
    params["first_stage_ddconfig"].update(ch_mult=[1, 2, 2, 1], num_res_blocks=2, attn_resolutions=[32])
    params["unet_config"]["params"].update(
        volume_dims=[16, 16, 32, 32], model_channels=32, channel_mult=[1, 2, 2, 2], num_head_channels=16,
        attention_resolutions=[2, 4], transformer_depth=2, context_dim=32)
    config["tiny_clip"].update(embed_dim=32, vision_width=64, vision_layers=2, vision_patch_size=16,
                               image_resolution=64)
    return config


@pytest.fixture(scope="module", params=["tiny", "variant"])
def config(request, repo_root) -> dict:
    """64-px images (8x8 latents) keep the CPU runs short; the count follows the latent size."""
    return (_tiny if request.param == "tiny" else _variant)(repo_root, image_size=64)


@pytest.fixture(scope="module")
def model(config):
    torch.manual_seed(0)
    model = ldm.build_model(copy.deepcopy(config))
    model.set_cameras(*(torch.as_tensor(buffer) for buffer in model_buffers()))
    return model


@pytest.fixture(scope="module")
def flops(config) -> ModelFlops:
    return ModelFlops(copy.deepcopy(config))


def test_input_image_and_decoder(model, flops):
    image = torch.rand(1, 3, model.image_size, model.image_size) * 2 - 1
    assert counted(model.encode_posterior, image) == flops.vae_encoder()
    assert counted(model.embed_clip, image) == flops.clip()
    latent = torch.randn(1, 4, model.latent_size, model.latent_size)
    assert counted(model.decode_latents, latent) == flops.vae_decoder()


def _volume_inputs(model, rows: int):
    """Sampled frustum volumes, time and view embeddings of `rows` target views."""
    side = model.latent_size
    frustum = torch.randn(rows, model.spatial_volume.frustum_volume_feats.conv0.in_channels,
                          model.spatial_volume.frustum_depth, side, side)
    return frustum, torch.randn(rows, VOLUME_TIME_DIM), torch.randn(rows, VIEWPOINT_DIM)


def test_volume_networks(model, flops):
    volume, n, side = model.spatial_volume, model.view_num, model.latent_size
    frustum, t_embed, v_embed = _volume_inputs(model, VIEWS)
    noisy_views = torch.randn(n, 4, side, side)
    assert counted(volume.target_encoder, noisy_views, t_embed[:1].expand(n, -1),
                   v_embed[:1].expand(n, -1)) == n * flops.view_encoder()
    size = volume.spatial_size
    stacked = torch.randn(1, volume.spatial_volume_feats.init_conv.in_channels, size, size, size)
    assert counted(volume.spatial_volume_feats, stacked, t_embed[:1]) == flops.spatial_volume_net()
    assert counted(volume.frustum_volume_feats, frustum, t_embed, v_embed) == VIEWS * flops.frustum_net()


def _unet_inputs(model, guided: bool):
    """x, t, one-token context and frustum features of VIEWS views; with guidance the rows are
    doubled, the unconditional half with a zero context (volume features: the caller's choice)."""
    feats = model.spatial_volume.frustum_volume_feats(*_volume_inputs(model, VIEWS))
    rows = 2 * VIEWS if guided else VIEWS
    x = torch.randn(rows, model.model.diffusion_model.input_blocks[0][0].in_channels,
                    model.latent_size, model.latent_size)
    context = torch.randn(VIEWS, 1, model.cc_projection.out_features)
    if guided:
        context = torch.cat([context, torch.zeros_like(context)])
    return x, torch.full((rows,), 501), context, feats


def test_unet_reference_with_guidance(model, flops, monkeypatch):
    """The reference attends over its one context token, projects k and v over the whole volume
    in the depth-wise blocks, and its unconditional rows go through those blocks with all-zero
    volume features. Our cross-attention attends only over two or more tokens; every count is
    linear in the number of tokens, so the one-token count is 2 F(2) - F(3). The depth-wise
    attention runs in the reference's formulation (tests/ldm/reference_forms.py)."""
    monkeypatch.setattr(depth_attention.DepthAttention, "forward", explicit_depth_attention_forward)
    x, t, context, feats = _unet_inputs(model, guided=True)
    feats = {width: torch.cat([f, torch.zeros_like(f)]) for width, f in feats.items()}
    unet = model.model.diffusion_model
    two, three = (counted_unet(unet, x, t, context.expand(-1, tokens, -1), feats) for tokens in (2, 3))
    assert {part: 2 * two[part] - three[part] for part in two} == flops.unet_call(2 * VIEWS, fast_path=False)


@pytest.mark.parametrize("guided", [False, True], ids=["no_guidance", "guidance"])
def test_unet_fast_path(model, flops, guided):
    x, t, context, feats = _unet_inputs(model, guided)
    zero_volume_rows = VIEWS if guided else 0
    assert counted_unet(model.model.diffusion_model, x, t, context, feats, zero_volume_rows) == \
        flops.unet_call(x.shape[0], zero_volume_rows, fast_path=True)


@pytest.mark.parametrize("name, samples, batch_view_num", [("tiny", 2, 6), ("full", 1, 8)])
@pytest.mark.slow
def test_generation_phases_on_the_meta_model(repo_root, name, samples, batch_view_num):
    """Input encoding, step constants, one denoising step with and without guidance, and
    decoding, as ldm.generate runs them. The miniature runs two samples in view chunks of 6, 6,
    4 (what the samples share, uneven chunks); the full model one sample in the default chunks
    of 8."""
    config = _tiny(repo_root) if name == "tiny" else repo_root / "configs" / "syncdreamer.yaml"
    model = ldm.build_model(config, device="meta")
    count = count_generation_flops(config, steps=1, samples=samples, batch_view_num=batch_view_num)
    side = model.latent_size
    image = torch.empty(1, 3, model.image_size, model.image_size, device="meta")
    posterior_noise = torch.empty(samples, 4, side, side, device="meta")
    cond = prepare_conditioning(model, image, 30.0, posterior_noise, sample_num=samples)
    assert counted(prepare_conditioning, model, image, 30.0, posterior_noise, sample_num=samples) == \
        count.conditioning["vae_encoder"] + count.conditioning["clip"]
    assert counted(model.step_constants, cond) == \
        count.conditioning["cc_projection"] + count.conditioning["camera_geometry"]
    x_t = torch.empty(samples, model.view_num, 4, side, side, device="meta")
    for cfg_scale in (2.0, 1.0):
        expected = count_generation_flops(config, steps=1, cfg_scale=cfg_scale, samples=samples,
                                          batch_view_num=batch_view_num).step
        assert counted(model.predict_noise, x_t, 981, model.step_constants(cond), cfg_scale,
                       batch_view_num) == expected, f"cfg_scale {cfg_scale}"
    assert counted(model.decode_latents, posterior_noise) * model.view_num == count.decoding


def test_steps_actually_run(repo_root):
    """The reference's uniform DDIM spacing runs 31 steps when 30 are asked for."""
    count = count_generation_flops(_tiny(repo_root), steps=30)
    assert count.steps == 31 and count.sampling == 31 * count.step


def test_full_model_figures(repo_root):
    """One sample, 50 steps, guidance 2.0, 8 views per UNet call (printed with -s)."""
    config = repo_root / "configs" / "syncdreamer.yaml"
    reference = count_generation_flops(config, fast_path=False)
    fast = count_generation_flops(config)
    tera = 1e12
    print(f"\nfull model, 1 sample, {fast.steps} steps, guidance 2.0: reference {reference.total / tera:.1f} "
          f"TFLOP, fast path {fast.total / tera:.1f} TFLOP")
    for name, count in (("reference", reference), ("fast path", fast)):
        parts = ", ".join(f"{part} {value / tera:.4f}" for part, value in count.per_step.items())
        before_sampling = sum(count.conditioning.values())
        print(f"{name}: per step {count.step / tera:.3f} TFLOP ({parts}); sampling {count.sampling / tera:.1f}, "
              f"before sampling {before_sampling / tera:.3f}, decoding {count.decoding / tera:.3f}")
    flops = ModelFlops(config)
    row = {fast_path: flops.unet_call(1, fast_path=fast_path) for fast_path in (False, True)}
    shared = flops.unet_call(1, 1)["depth_blocks"]
    print(f"UNet row (one view, one branch): body {row[False]['unet'] / tera:.4f} TFLOP reference, "
          f"{row[True]['unet'] / tera:.4f} fast path; depth blocks over a volume "
          f"{row[True]['depth_blocks'] / tera:.4f}; fast path: the unconditional rows' shared depth-block "
          f"update {shared / tera:.4f} per UNet call")
    # The estimate: "One sample is about 360 TFLOP of model work".
    assert 355 < reference.total / tera < 365
    assert fast.total < reference.total
