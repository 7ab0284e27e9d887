"""The service's GPU defaults, checked on the CPU: views per call chosen automatically, the
low-memory mode, and the switch to bfloat16 when float16 overflows."""
import numpy as np
import pytest
import torch

import ldm
from inference_server.generation import devices
from inference_server.generation.params import parse_params
from inference_server.generation.service import SyncDreamerService


def test_automatic_views_per_call_follow_the_memory_mode():
    normal = SyncDreamerService(random_weights=True, device="cpu")
    low = SyncDreamerService(random_weights=True, device="cpu", low_memory=True)
    assert not normal.low_memory and normal.batch_views(0) == 16 and normal.batch_views(5) == 5
    assert low.low_memory and low.batch_views(0) == 4 and low.batch_views(8) == 8
    assert low.info()["low_memory"] is True and low.info()["auto_batch_views"] == 4
    assert normal.info()["precision"] == "float32"


def test_low_memory_is_automatic_only_for_small_cuda_gpus():
    assert devices.resolve_low_memory(None, torch.device("cpu")) is False
    assert devices.resolve_low_memory(True, torch.device("cpu")) is True
    assert devices.resolve_precision("auto", torch.device("cpu")) == torch.float32


@pytest.mark.slow
def test_low_memory_generation_equals_the_normal_one(cat_png):
    params = parse_params({"steps": 1, "seed": 3, "background": "keep"})
    normal = SyncDreamerService(random_weights=True, device="cpu").run(cat_png, params)
    low_service = SyncDreamerService(random_weights=True, device="cpu", low_memory=True)
    low = low_service.run(cat_png, params)
    assert low_service.model.offloading
    for a, b in zip(normal.views[0], low.views[0]):
        difference = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
        assert difference.max() <= 1  # chunks of 4 views instead of 16: rounding only
    assert low_service.set_metadata(low, 0, "cat.png")["generation"]["batch_view_num"] == 4


def test_float16_overflow_switches_to_bfloat16_and_generates_again(cat_png, monkeypatch):
    service = SyncDreamerService(random_weights=True, device="cpu", precision="float16")
    service.load_model()
    runs = []

    def fake_generate(model, image, elevation, **kwargs):
        runs.append((model.dtype, kwargs["generator"].initial_seed()))
        value = float("inf") if model.dtype == torch.float16 else 0.0
        return torch.full((1, 16, 3, 256, 256), value)

    monkeypatch.setattr(ldm, "generate", fake_generate)
    result = service.run(cat_png, parse_params({"steps": 1, "seed": 9, "background": "keep"}))
    assert runs == [(torch.float16, 9), (torch.bfloat16, 9)]  # the same seed again
    assert service.dtype == torch.bfloat16 and service.model.cc_projection.weight.dtype == torch.bfloat16
    assert service.model.alphas_cumprod.dtype == torch.float32  # the schedule stays float32
    assert service.set_metadata(result, 0, "cat.png")["generation"]["precision"] == "bfloat16"
    # later generations go straight to bfloat16
    service.run(cat_png, parse_params({"steps": 1, "seed": 1, "background": "keep"}))
    assert runs[-1] == (torch.bfloat16, 1)


def test_unknown_compile_mode_is_refused_before_loading():
    from inference_server.errors import SetupError

    with pytest.raises(SetupError, match="unknown compile mode 'turbo'"):
        SyncDreamerService(random_weights=True, device="cpu", compile_mode="turbo")
