"""build_model gives exactly the reference's state-dict keys and shapes (minus CLIP's unused
text-side leftovers), for the full model on the meta device and for the miniatures."""
import pytest
import torch
from omegaconf import OmegaConf

import ldm
from ldm.config import ConfigError

CLIP_TEXT_LEFTOVERS = {f"clip_image_encoder.model.{name}" for name in (
    "token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias",
    "text_projection", "logit_scale")}


def _shapes(state_dict) -> dict:
    return {key: tuple(tensor.shape) for key, tensor in state_dict.items()}


def _reference_shapes(tsv_path) -> dict:
    shapes = {}
    for line in tsv_path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape, _ = line.split("\t")
        shapes[key] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    return shapes


@pytest.fixture(scope="module")
def full_model_on_meta(repo_root):
    return ldm.build_model(repo_root / "configs" / "syncdreamer.yaml", device="meta")


def test_full_model_has_the_reference_keys_and_shapes(full_model_on_meta, data_dir):
    reference = _reference_shapes(data_dir / "reference" / "state_dict_keys.tsv")
    ours = _shapes(full_model_on_meta.state_dict())
    assert len(reference) == 1618
    assert set(reference) - set(ours) == CLIP_TEXT_LEFTOVERS
    assert set(ours) - set(reference) == set()
    wrong = {k: (ours[k], reference[k]) for k in ours if ours[k] != reference[k]}
    assert wrong == {}


def test_meta_build_allocates_nothing_and_is_frozen(full_model_on_meta):
    tensors = list(full_model_on_meta.parameters()) + list(full_model_on_meta.buffers())
    assert all(t.is_meta for t in tensors)
    assert not full_model_on_meta.training
    assert not any(p.requires_grad for p in full_model_on_meta.parameters())


@pytest.mark.parametrize("config_name", ["golden", "configs/tiny.yaml"])
def test_tiny_configs_match_the_golden_state_dict(config_name, golden_path, golden_state, repo_root):
    config = golden_path / "tiny_config.yaml" if config_name == "golden" else repo_root / config_name
    ours = _shapes(ldm.build_model(config, device="meta").state_dict())
    golden = {k: v for k, v in _shapes(golden_state).items() if k not in CLIP_TEXT_LEFTOVERS}
    assert ours == golden


def test_config_may_be_a_path_an_omegaconf_node_or_a_dict(golden_path):
    path = golden_path / "tiny_config.yaml"
    node = OmegaConf.load(path)
    as_dict = OmegaConf.to_container(node)
    shapes = [_shapes(ldm.build_model(c, device="meta").state_dict()) for c in (str(path), node, as_dict)]
    assert shapes[0] == shapes[1] == shapes[2]


def test_half_precision_keeps_schedule_and_cameras_in_float32(golden_path):
    model = ldm.build_model(golden_path / "tiny_config.yaml", dtype=torch.float16)
    assert model.model.diffusion_model.out[2].weight.dtype == torch.float16
    for name in ("betas", "alphas_cumprod", "posterior_log_variance_clipped", "poses", "Ks", "azimuth"):
        assert getattr(model, name).dtype == torch.float32, name
    model.to(torch.bfloat16)
    assert model.cc_projection.weight.dtype == torch.bfloat16
    assert model.alphas_cumprod.dtype == torch.float32


def test_set_cameras_wraps_azimuths(golden_path, golden_state):
    model = ldm.build_model(golden_path / "tiny_config.yaml")
    azimuths = torch.arange(16, dtype=torch.float32) * (2 * torch.pi / 16)
    model.set_cameras(golden_state["poses"], golden_state["Ks"], azimuths)
    assert torch.equal(model.poses, golden_state["poses"])
    assert model.azimuth[8].item() == pytest.approx(-torch.pi)   # the facts' wrapped column
    assert model.azimuth[15].item() == pytest.approx(-0.3926995, abs=1e-6)
    torch.testing.assert_close(model.azimuth, golden_state["azimuth"], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match=r"poses must have shape \(16, 3, 4\)"):
        model.set_cameras(golden_state["poses"][:8], golden_state["Ks"], azimuths)


def test_bad_configs_say_what_to_change(golden_path):
    config = OmegaConf.to_container(OmegaConf.load(golden_path / "tiny_config.yaml"))
    wrong_target = {**config, "model": {**config["model"], "target": "ldm.models.Zero123"}}
    with pytest.raises(ConfigError, match="only SyncDreamer"):
        ldm.build_model(wrong_target, device="meta")
    config["model"]["params"]["unet_config"]["params"]["context_dim"] = 32
    with pytest.raises(ConfigError, match="context_dim 32 must equal"):
        ldm.build_model(config, device="meta")
    with pytest.raises(ConfigError, match="not found"):
        ldm.build_model(golden_path / "no_such_config.yaml", device="meta")
    with pytest.raises(ConfigError, match="model.params"):
        ldm.build_model({"data": {}}, device="meta")
