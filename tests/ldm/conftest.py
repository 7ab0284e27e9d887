"""Golden data of the reference miniature, and our model built and loaded from it once."""
import json
import os
from pathlib import Path

import pytest
import torch

import ldm
from ldm.checkpoint import load_state_dict_strict


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
def golden_io(golden_path) -> dict:
    return torch.load(golden_path / "golden_io.pt", weights_only=True)


@pytest.fixture(scope="session")
def golden_meta(golden_path) -> dict:
    return json.loads((golden_path / "golden_meta.json").read_text())


@pytest.fixture(scope="session")
def golden_state(golden_path) -> dict:
    return torch.load(golden_path / "tiny_state_dict.pt", weights_only=True)


@pytest.fixture(scope="session")
def golden_model(golden_path, golden_state):
    """Our model from the folder's config, filled strictly from its state dict (float32, CPU)."""
    model = ldm.build_model(golden_path / "tiny_config.yaml")
    load_state_dict_strict(model, golden_state)
    return model


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
        error = (ours.detach().float().cpu() - golden.float()).abs().max().item()
        tolerance = 1e-4 * max(1.0, golden.abs().max().item())
        print(f"golden {name}: max error {error:.3g} (tolerance {tolerance:.3g})")
        assert error <= tolerance, f"{name}: max error {error:.3g} > tolerance {tolerance:.3g}"
        return error

    return check
