"""The fast path computes the reference's function: guidance without the zero volumes, cross-
attention on one token, per-generation constants, the low-memory offload, channels-last and
torch.compile, and the half-precision check that the benchmark prints."""
import pytest
import torch
import torch.nn.functional as F

import ldm
from inference_server.cameras import model_buffers
from ldm.generate import sample_latents
from ldm.modules.attention import CrossAttention
from model_tools.precision_check import noise_prediction_errors
from ldm.speed import apply_speed_options

VOLUME_WIDTHS = (32, 16, 8, 4)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.fixture(scope="module")
def tiny_model(repo_root):
    torch.manual_seed(5)
    model = ldm.build_model(repo_root / "configs" / "tiny.yaml")
    model.set_cameras(*(torch.as_tensor(buffer) for buffer in model_buffers()))
    return model


@pytest.fixture(scope="module")
def image():
    return torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(2)) * 2 - 1


@pytest.mark.slow
def test_guidance_without_zero_volumes_equals_the_reference_formulation(golden_model, golden_io):
    """The reference runs the unconditional rows through the depth blocks with all-zero volumes;
    we skip them. Both give the same eps."""
    io, wrapper = golden_io, golden_model.model
    feats = {w: io[f"unet.volume_feats.{w}"] for w in VOLUME_WIDTHS}
    x, t, context, x_concat = io["unet.x"], io["unet.t"], io["unet.clip_embed"], io["unet.x_concat"]
    doubled = lambda c: torch.cat([c, torch.zeros_like(c)])  # noqa: E731
    with torch.no_grad():
        ours = wrapper.predict_with_cfg(x, t, context, feats, x_concat, 2.0)
        both = wrapper(torch.cat([x, x]), torch.cat([t, t]), doubled(context),
                       {w: doubled(f) for w, f in feats.items()}, doubled(x_concat))
    cond, uncond = both.chunk(2)
    reference = uncond + 2.0 * (cond - uncond)
    assert _relative(ours, reference) < 1e-5
    # and the shortcut really is what the unconditional rows get
    with torch.no_grad():
        shortcut = wrapper(x, t, torch.zeros_like(context), {}, torch.zeros_like(x_concat), zero_volume_rows=x.shape[0])
    assert _relative(shortcut, uncond) < 1e-5


def test_cross_attention_on_one_token_equals_full_attention():
    torch.manual_seed(0)
    attention = CrossAttention(query_dim=32, context_dim=24, heads=4, dim_head=8)
    x, context = torch.randn(3, 50, 32), torch.randn(3, 1, 24)
    split = lambda t: t.view(3, t.shape[1], 4, 8).transpose(1, 2)  # noqa: E731
    with torch.no_grad():
        full = F.scaled_dot_product_attention(split(attention.to_q(x)), split(attention.to_k(context)),
                                              split(attention.to_v(context)))
        full = attention.to_out(full.transpose(1, 2).reshape(3, 50, 32))
        ours = attention(x, context)
    assert ours.shape == full.shape
    assert torch.allclose(ours, full, atol=1e-6)


@pytest.mark.slow
def test_constants_are_computed_once_per_generation(tiny_model, image, monkeypatch):
    calls = {"frustum_grid": 0, "spatial_grid": 0, "cc_projection": 0}
    for name in ("frustum_grid", "spatial_grid"):
        original = getattr(tiny_model.spatial_volume, name)
        monkeypatch.setattr(tiny_model.spatial_volume, name,
                            lambda *a, _o=original, _n=name: calls.__setitem__(_n, calls[_n] + 1) or _o(*a))
    hook = tiny_model.cc_projection.register_forward_hook(
        lambda *_: calls.__setitem__("cc_projection", calls["cc_projection"] + 1))
    try:
        sample_latents(tiny_model, image, 30.0, steps=3, batch_view_num=4, generator=torch.Generator().manual_seed(0))
    finally:
        hook.remove()
    assert calls == {"frustum_grid": 1, "spatial_grid": 1, "cc_projection": 1}


@pytest.mark.slow
def test_all_views_in_one_call_equal_chunks_of_four(tiny_model, image):
    run = lambda views: sample_latents(tiny_model, image, 30.0, steps=2, batch_view_num=views,  # noqa: E731
                                       generator=torch.Generator().manual_seed(4))
    assert _relative(run(16), run(4)) < 1e-5


def test_offload_moves_clip_and_vae_only_while_they_work(tiny_model, image, monkeypatch):
    """The CPU has no second device, so the model pretends to live on 'cuda' and each waiting
    part records where it is sent instead of moving."""
    moves = []
    for name in ("clip_image_encoder", "first_stage_model"):
        part = getattr(tiny_model, name)
        monkeypatch.setattr(part, "to", lambda device, _n=name, _p=part: moves.append((_n, str(device))) or _p)
    monkeypatch.setattr(type(tiny_model), "device", property(lambda self: torch.device("cuda")))
    tiny_model.offload_waiting_parts()
    try:
        assert moves == [("clip_image_encoder", "cpu"), ("first_stage_model", "cpu")]
        moves.clear()
        with tiny_model.on_model_device(tiny_model.clip_image_encoder):
            assert moves == [("clip_image_encoder", "cuda")]
        assert moves == [("clip_image_encoder", "cuda"), ("clip_image_encoder", "cpu")]
    finally:
        tiny_model.offloading = False
    moves.clear()
    with tiny_model.on_model_device(tiny_model.first_stage_model):
        pass
    assert moves == []  # without offloading nothing moves


@pytest.mark.slow
def test_channels_last_and_compile_leave_the_result_unchanged(repo_root, image):
    def build():
        torch.manual_seed(5)
        model = ldm.build_model(repo_root / "configs" / "tiny.yaml")
        model.set_cameras(*(torch.as_tensor(buffer) for buffer in model_buffers()))
        return model

    def run(model):
        with torch.inference_mode():
            return sample_latents(model, image, 30.0, steps=1, batch_view_num=16,
                                  generator=torch.Generator().manual_seed(3))

    plain = run(build())
    keys = build().state_dict().keys()
    fast = apply_speed_options(build(), channels_last=True, compile_mode="default", backend="eager")
    assert fast.model.diffusion_model.input_blocks[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert fast.state_dict().keys() == keys  # compiled in place: a checkpoint still loads
    assert _relative(run(fast), plain) < 1e-5
    with pytest.raises(ValueError, match="compile mode 'fastest'"):
        apply_speed_options(build(), compile_mode="fastest")


@pytest.mark.slow
def test_precision_check_reports_zero_for_the_same_model_and_a_small_error_for_bfloat16(
        tiny_model, image, repo_root):
    same = noise_prediction_errors(tiny_model, tiny_model, image, 30.0, steps=2)
    assert same == [0.0, 0.0]
    half = ldm.build_model(repo_root / "configs" / "tiny.yaml", dtype=torch.bfloat16)
    half.load_state_dict(tiny_model.state_dict())
    errors = noise_prediction_errors(tiny_model, half, image, 30.0, steps=2)
    assert len(errors) == 2 and all(0 < error < 0.05 for error in errors)

