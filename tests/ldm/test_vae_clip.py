"""The VAE and CLIP image tower compute the reference's function and carry its key names."""
import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ldm.modules.autoencoder import AutoencoderKL
from ldm.modules.clip_vision import CLIPImageEncoder, clip_encoder_kwargs

SCALE_FACTOR = 0.18215
FULL_VAE_DDCONFIG = dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=128,
                         ch_mult=[1, 2, 4, 4], num_res_blocks=2, attn_resolutions=[], dropout=0.0)


@pytest.fixture(scope="module")
def golden_dir(data_dir) -> Path:
    folder = Path(os.environ.get("GLIMPSE_GOLDEN_DIR", data_dir / "golden" / "tiny"))
    if not (folder / "golden_io.pt").is_file():
        pytest.fail(f"golden data not found in {folder}; set GLIMPSE_GOLDEN_DIR")
    return folder


@pytest.fixture(scope="module")
def golden(golden_dir, test_device):
    config = OmegaConf.load(golden_dir / "tiny_config.yaml")
    state = torch.load(golden_dir / "tiny_state_dict.pt", weights_only=True)
    io = torch.load(golden_dir / "golden_io.pt", weights_only=True, map_location=test_device)
    image = io["input.image_bhwc"].permute(0, 3, 1, 2).contiguous()
    return config, state, io, image


def _sub_state(state, prefix):
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _assert_close(ours, io, name):
    reference = io[name].float().cpu()
    assert ours.shape == reference.shape, name
    tolerance = 1e-4 * max(1.0, reference.abs().max().item())
    error = (ours.float().cpu() - reference).abs().max().item()
    assert error <= tolerance, f"{name}: max error {error:.3g} > {tolerance:.3g}"


@pytest.fixture(scope="module")
def tiny_vae(golden, test_device):
    config, state, _, _ = golden
    vae = AutoencoderKL(config.model.params.first_stage_ddconfig).eval()
    vae.load_state_dict(_sub_state(state, "first_stage_model."), strict=True)
    return vae.to(test_device)


@pytest.fixture(scope="module")
def tiny_clip(golden, test_device):
    config, state, _, _ = golden
    clip = CLIPImageEncoder(**clip_encoder_kwargs(config.tiny_clip)).eval()
    clip_state = _sub_state(state, "clip_image_encoder.")
    text_leftovers = {k for k in clip_state if not k.startswith("model.visual.")}
    assert text_leftovers == {"model.token_embedding.weight", "model.positional_embedding",
                              "model.ln_final.weight", "model.ln_final.bias",
                              "model.text_projection", "model.logit_scale"}
    clip.load_state_dict({k: v for k, v in clip_state.items() if k not in text_leftovers}, strict=True)
    return clip.to(test_device)


@pytest.mark.golden
@torch.no_grad()
def test_clip_preprocessing_matches_reference(tiny_clip, golden):
    _, _, io, image = golden
    pixels = tiny_clip.preprocess(image)
    assert pixels.shape == (1, 3, 224, 224)
    _assert_close(pixels[:, :, 100:116, 100:116], io, "clip.preprocessed_crop")
    _assert_close(pixels.mean(dim=(2, 3)), io, "clip.preprocessed_channel_mean")


@pytest.mark.golden
@torch.no_grad()
def test_clip_embedding_matches_reference(tiny_clip, golden):
    _, _, io, image = golden
    _assert_close(tiny_clip.encode(image), io, "clip.embed")


@pytest.mark.golden
@torch.no_grad()
def test_vae_posterior_matches_reference(tiny_vae, golden):
    _, _, io, image = golden
    mean, logvar = tiny_vae.encode(image)
    _assert_close(mean, io, "vae.posterior_mean")
    _assert_close(logvar, io, "vae.posterior_logvar")


@pytest.mark.golden
@torch.no_grad()
def test_vae_decode_matches_reference(tiny_vae, golden):
    _, _, io, _ = golden
    _assert_close(tiny_vae.decode(io["vae.decode_in_z"] / SCALE_FACTOR), io, "vae.decode_out")


def test_clip_kwargs_from_openai_config():
    kwargs = clip_encoder_kwargs({"embed_dim": 768, "image_resolution": 224, "vision_layers": 24,
                                  "vision_width": 1024, "vision_patch_size": 14, "context_length": 77})
    assert kwargs == dict(embed_dim=768, width=1024, layers=24, heads=16, patch_size=14,
                          image_resolution=224)
    with pytest.raises(ValueError, match="ResNet"):
        clip_encoder_kwargs({"embed_dim": 1024, "image_resolution": 224, "vision_layers": [3, 4, 6, 3],
                             "vision_width": 64, "vision_patch_size": None})


def _reference_shapes(data_dir, prefix):
    shapes = {}
    for line in (data_dir / "reference" / "state_dict_keys.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, _ = line.split("\t")
        if key.startswith(prefix):
            shapes[key[len(prefix):]] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    return shapes


def _our_shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_full_size_vae_keys_and_shapes_match_reference(data_dir):
    with torch.device("meta"):
        vae = AutoencoderKL(FULL_VAE_DDCONFIG)
    reference = _reference_shapes(data_dir, "first_stage_model.")
    assert len(reference) == 248
    assert _our_shapes(vae) == reference


def test_full_size_clip_keys_and_shapes_match_reference_without_text_leftovers(data_dir):
    with torch.device("meta"):
        clip = CLIPImageEncoder()
    reference = _reference_shapes(data_dir, "clip_image_encoder.")
    visual = {k: v for k, v in reference.items() if k.startswith("model.visual.")}
    assert set(reference) - set(visual) == {
        "model.token_embedding.weight", "model.positional_embedding", "model.ln_final.weight",
        "model.ln_final.bias", "model.text_projection", "model.logit_scale"}
    assert _our_shapes(clip) == visual
    # mean/std are constants, never stored in a checkpoint
    assert "mean" not in clip.state_dict() and "std" not in clip.state_dict()
    assert clip.model.visual.transformer.resblocks[0].attn.heads == 16


@torch.no_grad()
def test_half_precision_keeps_norm_statistics_in_float32(tiny_vae, tiny_clip, golden):
    """In float16 (bfloat16 on CPU) the norms run in float32, so outputs stay close to float32."""
    _, _, io, image = golden
    low = torch.bfloat16
    vae = AutoencoderKL(golden[0].model.params.first_stage_ddconfig).to(low)
    vae.load_state_dict(tiny_vae.state_dict())
    mean, _ = vae.encode(image.to(low))
    assert mean.dtype == low
    error = (mean.float() - io["vae.posterior_mean"]).abs().max().item()
    assert error < 0.1 * io["vae.posterior_mean"].abs().max().item()
    clip = CLIPImageEncoder(**clip_encoder_kwargs(golden[0].tiny_clip)).to(low)
    clip.load_state_dict(tiny_clip.state_dict())
    embed = clip.encode(image.to(low))
    assert embed.dtype == low and torch.isfinite(embed.float()).all()
    assert (embed.float() - io["clip.embed"]).abs().max().item() < 0.1 * io["clip.embed"].abs().max().item()
