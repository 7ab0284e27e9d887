"""Schedule, DDIM tables and the generate() run: cancellation, batching, determinism, bf16."""
import re

import pytest
import torch

import ldm
from ldm.checkpoint import load_state_dict_strict
from ldm.generate import prepare_conditioning, sample_latents
from ldm.schedule import ddim_tables, ddim_timesteps, ddpm_buffers, scaled_linear_betas

LATENT = (4, 32, 32)
# Appendix B prints 8 decimals; our float32 values are within half a float32 ulp (<= 3e-8 here).
ROUNDING = 5e-9 + 3e-8


def _appendix_b_rows(facts_text: str) -> list[tuple[int, int, float, float, float]]:
    """(index, t, alpha_bar, alpha_bar_prev, sigma) rows of the facts' 50-step DDIM table."""
    section = facts_text.split("## Appendix B", 1)[1].split("## Appendix C", 1)[0]
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|",
                      section, flags=re.M)
    return [(int(i), int(t), float(a), float(ap), float(s)) for i, t, a, ap, s in rows]


def test_schedule_buffers_equal_the_reference(golden_state):
    for name, ours in ddpm_buffers(scaled_linear_betas()).items():
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, golden_state[name], rtol=0, atol=1e-7, msg=name)


def test_ddim_tables_equal_golden_meta(golden_state, golden_meta):
    tables = ddim_tables(golden_state["alphas_cumprod"], golden_meta["ddim_steps"], golden_meta["ddim_eta"])
    assert tables.timesteps.flip(0).tolist() == golden_meta["ddim_timesteps_sampling_order"]
    for ours, key in ((tables.alphas, "ddim_alphas"), (tables.alphas_prev, "ddim_alphas_prev"),
                      (tables.sigmas, "ddim_sigmas_eta1"),
                      (tables.sqrt_one_minus_alphas, "ddim_sqrt_one_minus_alphas")):
        assert ours.dtype == torch.float32
        assert ours.tolist() == golden_meta[key], key   # float32 values, bit for bit


def test_ddim_tables_equal_facts_appendix_b(data_dir):
    rows = _appendix_b_rows((data_dir / "reference" / "syncdreamer_facts.md").read_text())
    assert len(rows) == 50
    alphas_cumprod = ddpm_buffers(scaled_linear_betas())["alphas_cumprod"]
    tables = ddim_tables(alphas_cumprod, 50, eta=1.0)
    for index, t, alpha, alpha_prev, sigma in rows:
        assert int(tables.timesteps[index]) == t
        assert abs(tables.alphas[index].item() - alpha) < ROUNDING
        assert abs(tables.alphas_prev[index].item() - alpha_prev) < ROUNDING
        assert abs(tables.sigmas[index].item() - sigma) < ROUNDING
    assert tables.alphas_prev[0].item() == alphas_cumprod[0].item()  # not 1.0


def test_ddim_timesteps_follow_the_reference_discretisation():
    assert ddim_timesteps(50).tolist() == list(range(1, 1000, 20))
    assert ddim_timesteps(4).tolist() == [1, 251, 501, 751]
    assert len(ddim_timesteps(30)) == 31          # 1000 // 30 = 33: the reference takes 31 steps
    assert ddim_timesteps(1000).max().item() == 999  # t = 1000 does not exist: dropped
    with pytest.raises(ValueError, match="steps must be between 1 and 1000"):
        ddim_timesteps(0)


def _noise(batch: int, steps: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"posterior": torch.randn(batch, *LATENT, generator=g),
            "x_T": torch.randn(batch, 16, *LATENT, generator=g),
            "steps": [torch.randn(batch, 16, *LATENT, generator=g) for _ in range(steps - 1)]}


def _sample(noise: dict, index: int) -> dict:
    return {"posterior": noise["posterior"][index:index + 1], "x_T": noise["x_T"][index:index + 1],
            "steps": [n[index:index + 1] for n in noise["steps"]]}


@pytest.mark.slow
def test_samples_and_view_chunks_do_not_interact(golden_model, golden_image):
    """Two guided samples in view chunks of 5, 5, 5, 1 give what each gives alone in one chunk."""
    noise = _noise(2, steps=1, seed=7)
    together = sample_latents(golden_model, golden_image, 30.0, steps=1, batch_view_num=5, sample_num=2,
                              noise=noise)
    for index in range(2):
        alone = sample_latents(golden_model, golden_image, 30.0, steps=1, batch_view_num=16,
                               noise=_sample(noise, index))
        torch.testing.assert_close(together[index:index + 1], alone, rtol=0,
                                   atol=1e-4 * max(1.0, alone.abs().max().item()))


@pytest.mark.slow
def test_cancel_stops_within_one_step_and_returns_nothing(golden_model, golden_image, monkeypatch):
    events, model_calls = [], []
    predict_noise = golden_model.predict_noise
    monkeypatch.setattr(golden_model, "predict_noise",
                        lambda *args, **kwargs: model_calls.append(1) or predict_noise(*args, **kwargs))

    def cancel_after_first_step(event):
        events.append(event)
        return event.phase == "sampling" and event.step == 1

    result = None
    with pytest.raises(ldm.Cancelled):
        result = ldm.generate(golden_model, golden_image, 30.0, steps=3, cfg_scale=1.0,
                              batch_view_num=16, callback=cancel_after_first_step)
    assert result is None
    assert events == [ldm.Progress("sampling", 1, 3)]
    assert len(model_calls) == 1


@pytest.mark.slow
def test_cancel_while_decoding(golden_model, golden_image):
    events = []

    def cancel_at_third_view(event):
        events.append(event)
        return event.phase == "decoding" and event.step == 3

    with pytest.raises(ldm.Cancelled):
        ldm.generate(golden_model, golden_image, 30.0, steps=1, cfg_scale=1.0, batch_view_num=16,
                     callback=cancel_at_third_view)
    assert events == [ldm.Progress("sampling", 1, 1)] + [ldm.Progress("decoding", i, 16) for i in (1, 2, 3)]


@pytest.mark.slow
def test_posterior_mean_makes_the_run_a_function_of_x_T(golden_model, golden_image):
    first, second = _noise(1, steps=1, seed=1), _noise(1, steps=1, seed=2)
    second["x_T"] = first["x_T"]
    run = lambda noise: sample_latents(  # noqa: E731
        golden_model, golden_image, 30.0, steps=1, cfg_scale=1.0, batch_view_num=16,
        use_posterior_mean=True, noise=noise)
    assert torch.equal(run(first), run(second))
    # Not vacuous: without the flag the two posterior draws condition differently.
    with torch.no_grad():
        sampled = [prepare_conditioning(golden_model, golden_image, 30.0, n["posterior"]).x_input
                   for n in (first, second)]
    assert not torch.allclose(sampled[0], sampled[1])


@pytest.mark.slow
def test_generate_reports_progress(golden_model, golden_image):
    events = []
    views = ldm.generate(golden_model, golden_image, 10.0, steps=1, cfg_scale=1.0, batch_view_num=16,
                         callback=events.append)
    assert views.shape == (1, 16, 3, 256, 256) and views.dtype == torch.float32
    assert views.device.type == "cpu" and torch.isfinite(views).all()
    assert events == [ldm.Progress("sampling", 1, 1)] + [ldm.Progress("decoding", i, 16) for i in range(1, 17)]


@pytest.mark.slow
def test_a_seed_gives_one_result(golden_model, golden_image):
    run = lambda: sample_latents(  # noqa: E731
        golden_model, golden_image, 10.0, steps=2, cfg_scale=1.0, batch_view_num=16,
        generator=torch.Generator().manual_seed(3))
    assert torch.equal(run(), run())   # golden sample_eta0 checks the draws against the reference


def test_generate_refuses_bad_inputs(golden_path, golden_model, golden_image):
    with pytest.raises(ValueError, match=r"image must be a float tensor \(B, 3, 256, 256\)"):
        ldm.generate(golden_model, golden_image[:, :, :128], 30.0, steps=1)
    with pytest.raises(ValueError, match="noise\\['x_T'\\] has shape"):
        ldm.generate(golden_model, golden_image, 30.0, steps=1, noise={"x_T": torch.zeros(1, 4, 32, 32)})
    cameraless = ldm.build_model(golden_path / "tiny_config.yaml")
    with pytest.raises(RuntimeError, match="no target cameras"):
        ldm.generate(cameraless, golden_image, 30.0, steps=1)


@pytest.mark.slow
def test_bfloat16_forward_runs_and_is_close_to_float32(golden_path, golden_state, golden_model, golden_io):
    model = ldm.build_model(golden_path / "tiny_config.yaml", dtype=torch.bfloat16)
    load_state_dict_strict(model, golden_state)
    assert model.cc_projection.weight.dtype == torch.bfloat16
    assert model.alphas_cumprod.dtype == torch.float32 and model.poses.dtype == torch.float32
    assert torch.equal(model.alphas_cumprod, golden_state["alphas_cumprod"])

    io = golden_io
    feats = {w: io[f"unet.volume_feats.{w}"] for w in (32, 16, 8, 4)}
    args = (io["unet.x"], io["unet.t"], io["unet.clip_embed"], feats, io["unet.x_concat"])
    with torch.no_grad():
        half, full = model.model.predict_with_cfg(*args, 2.0), golden_model.model.predict_with_cfg(*args, 2.0)
    assert half.dtype == torch.float32
    assert (half - full).abs().max().item() < 0.05 * full.abs().max().item()

    latents = sample_latents(model, io["input.image_bhwc"].permute(0, 3, 1, 2).contiguous(), 30.0,
                             steps=1, batch_view_num=16, generator=torch.Generator().manual_seed(0))
    assert latents.dtype == torch.float32 and torch.isfinite(latents).all()
    with torch.no_grad():
        view = model.decode_latents(io["sample.x_inter"][-1][:, 0])
    reference = io["sample.decoded"][:, 0]
    assert view.dtype == torch.float32
    assert (view - reference).abs().max().item() < 0.05 * reference.abs().max().item()
