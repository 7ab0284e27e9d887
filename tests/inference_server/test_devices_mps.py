"""Apple silicon: Auto picks MPS when there is no CUDA GPU; float32 and the low-memory mode from
the recommended working set are its defaults (torch's MPS probes replaced: no Mac here)."""
import pytest
import torch

from inference_server.generation import devices

GIB = 1024 ** 3


@pytest.fixture
def apple_gpu(monkeypatch):
    """A machine whose torch sees Apple's GPU and no CUDA; returns a setter for its working set."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    working_set = {"bytes": 32 * GIB}
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: working_set["bytes"], raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 2 * GIB, raising=False)
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: GIB, raising=False)
    return lambda gib: working_set.update(bytes=int(gib * GIB))


def test_auto_picks_mps_with_float32(apple_gpu):
    device = devices.resolve_device("auto")
    assert device.type == "mps"
    assert devices.resolve_precision("auto", device) == torch.float32
    assert devices.resolve_precision("float16", device) == torch.float16  # a choice


def test_low_memory_follows_the_working_set(apple_gpu):
    mps = torch.device("mps")
    apple_gpu(10.7)  # a 16 GB Mac
    assert devices.resolve_low_memory(None, mps) is True
    apple_gpu(21.3)  # a 32 GB Mac
    assert devices.resolve_low_memory(None, mps) is False
    assert devices.resolve_low_memory(True, mps) is True


def test_gpu_memory_reports_the_working_set(apple_gpu):
    apple_gpu(16)
    memory = devices.gpu_memory(torch.device("mps"))
    assert memory == {"device_name": "Apple GPU (MPS)", "total_mb": 16384, "free_mb": 14336, "allocated_mb": 1024,
                      "reserved_mb": 2048}


def test_without_mps_the_cpu_keeps_its_defaults():
    cpu = torch.device("cpu")
    assert devices.resolve_low_memory(None, cpu) is False and devices.gpu_memory(cpu) is None
