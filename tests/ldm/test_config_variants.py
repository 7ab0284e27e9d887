"""Nothing in the model depends on the tiny golden folder's particular numbers: another miniature
with other widths, heads, channel multipliers, volume sizes, VAE and CLIP sizes builds from its
config alone, samples with guidance, and reloads its own state dict strictly."""
import copy

import pytest
import torch
from omegaconf import OmegaConf

import ldm
from inference_server.cameras import model_buffers
from ldm.checkpoint import load_state_dict_strict


@pytest.fixture(scope="module")
def variant_config(repo_root):
    config = OmegaConf.to_container(OmegaConf.load(repo_root / "configs" / "tiny.yaml"))
    params = config["model"]["params"]
    params["clip_embed_dim"] = 32
    params["volume_dims"] = [16, 16, 32, 32]
    vae = params["first_stage_ddconfig"]
    vae.update(ch=32, ch_mult=[1, 2, 2, 1], num_res_blocks=2)
    unet = params["unet_config"]["params"]
    unet.update(volume_dims=[16, 16, 32, 32], model_channels=64, channel_mult=[1, 2, 2, 2], num_heads=4,
                context_dim=32)
    config["tiny_clip"].update(embed_dim=32, vision_width=64, vision_layers=2, vision_patch_size=32)
    return config


def _build(config):
    torch.manual_seed(3)
    model = ldm.build_model(copy.deepcopy(config))
    model.set_cameras(*(torch.as_tensor(buffer) for buffer in model_buffers()))
    return model


def test_variant_sizes_reach_every_network(variant_config):
    state = _build(variant_config).state_dict()
    assert state["cc_projection.weight"].shape == (32, 36)  # clip_embed_dim + 4 view numbers
    assert state["model.diffusion_model.input_blocks.0.0.weight"].shape == (64, 8, 3, 3)
    assert state["model.diffusion_model.input_blocks.4.0.out_layers.3.weight"].shape == (128, 128, 3, 3)
    assert state["model.diffusion_model.middle_conditions.proj_context.0.weight"].shape == (32, 32, 1, 1, 1)
    assert state["spatial_volume.spatial_volume_feats.init_conv.weight"].shape[0] == 16
    assert state["first_stage_model.encoder.down.1.block.0.conv1.weight"].shape == (64, 32, 3, 3)
    assert state["clip_image_encoder.model.visual.conv1.weight"].shape == (64, 3, 32, 32)
    assert state["clip_image_encoder.model.visual.proj"].shape == (64, 32)


@pytest.mark.slow
def test_variant_samples_with_guidance_and_reloads_strictly(variant_config):
    image = torch.rand(1, 3, 256, 256) * 2 - 1

    def run(model):
        return ldm.generate(model, image, 20.0, steps=1, cfg_scale=2.0, batch_view_num=8,
                            generator=torch.Generator().manual_seed(11))

    model = _build(variant_config)
    views = run(model)
    assert views.shape == (1, 16, 3, 256, 256) and torch.isfinite(views).all()

    reloaded = ldm.build_model(copy.deepcopy(variant_config), device="meta")
    load_state_dict_strict(reloaded, model.state_dict())
    assert torch.equal(run(reloaded), views)
