"""Golden data of the reference miniature, and our model built and loaded from it once.

GLIMPSE_TEST_DEVICE (default cpu) chooses where the golden comparisons run: tools/gpu_check.sh
sets it to cuda. On CUDA, TF32 is switched off so the matrix products are true float32 and the
reference's tolerance holds unchanged."""
import json
import os
from pathlib import Path

import pytest
import torch

import ldm
from ldm.checkpoint import load_state_dict_strict


def golden_test_device() -> torch.device:
    """The device of GLIMPSE_TEST_DEVICE, with TF32 off on CUDA; a clear failure if it is absent."""
    device = torch.device(os.environ.get("GLIMPSE_TEST_DEVICE", "cpu"))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            pytest.fail("GLIMPSE_TEST_DEVICE=cuda but torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    return device


@pytest.fixture(scope="session")
def test_device() -> torch.device:
    return golden_test_device()


def golden_folder(data_dir: Path) -> Path:
    return Path(os.environ.get("GLIMPSE_GOLDEN_DIR", data_dir / "golden" / "tiny")).resolve()


@pytest.fixture(scope="session")
def golden_path(data_dir) -> Path:
    folder = golden_folder(data_dir)
    missing = [name for name in ("tiny_config.yaml", "tiny_state_dict.pt", "golden_io.pt",
                                 "golden_meta.json") if not (folder / name).is_file()]
    if missing:
        pytest.fail(f"golden folder {folder} lacks {', '.join(missing)}; set GLIMPSE_GOLDEN_DIR")
    return folder


@pytest.fixture(scope="session")
def golden_io(golden_path, test_device) -> dict:
    """The golden tensors on the test device (the comparisons move results back to the CPU)."""
    return torch.load(golden_path / "golden_io.pt", weights_only=True, map_location=test_device)


@pytest.fixture(scope="session")
def golden_meta(golden_path) -> dict:
    return json.loads((golden_path / "golden_meta.json").read_text())


@pytest.fixture(scope="session")
def golden_state(golden_path) -> dict:
    return torch.load(golden_path / "tiny_state_dict.pt", weights_only=True)


@pytest.fixture(scope="session")
def golden_model(golden_path, golden_state, test_device):
    """Our model from the folder's config, filled strictly from its state dict (float32, on the
    test device)."""
    model = ldm.build_model(golden_path / "tiny_config.yaml")
    load_state_dict_strict(model, golden_state)
    return model.to(test_device)


@pytest.fixture(scope="session")
def golden_image(golden_io) -> torch.Tensor:
    # Contiguous NCHW: CPU GroupNorm on a channels_last view is inaccurate (golden README).
    return golden_io["input.image_bhwc"].permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="session")
def match_golden(golden_io):
    """check(name, ours): max|ours - golden| <= 1e-4 * max(1, max|golden|); prints the error."""

    def check(name: str, ours: torch.Tensor) -> float:
        golden = golden_io[name]
        assert tuple(ours.shape) == tuple(golden.shape), \
            f"{name}: shape {tuple(ours.shape)} != golden {tuple(golden.shape)}"
        golden = golden.float().cpu()
        error = (ours.detach().float().cpu() - golden).abs().max().item()
        tolerance = 1e-4 * max(1.0, golden.abs().max().item())
        print(f"golden {name}: max error {error:.3g} (tolerance {tolerance:.3g})")
        assert error <= tolerance, f"{name}: max error {error:.3g} > tolerance {tolerance:.3g}"
        return error

    return check
