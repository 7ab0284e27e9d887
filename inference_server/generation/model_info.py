"""What a model service says about its model before loading it, without torch.

SyncDreamerService (service.py) reports these; the Ray ingress reports `unloaded_info` while no
model replica runs (the head node has no torch, and maybe no checkpoint and no GPU).
"""
from pathlib import Path

from .params import cli_switch

FULL_CONFIG = "syncdreamer.yaml"
TINY_CONFIG = "tiny.yaml"
# Views per UNet call when a job asks for 0 (automatic): all sixteen with both guidance branches
# in one call, or four in the low-memory mode. Chunking does not change the result.
AUTO_BATCH_VIEWS = 16
LOW_MEMORY_BATCH_VIEWS = 4


def random_weights_warning(switch=cli_switch) -> str:
    """Said wherever views from random weights show up; `switch` spells the option."""
    return (f"RANDOM WEIGHTS: the model runs without trained weights ({switch('random_weights')}), so every "
            "view is noise, not your object. For real views get the checkpoint with "
            f"`python -m inference_server download` and start without {switch('random_weights')}.")


def unloaded_info(service_options: dict) -> dict:
    """The model info (schemas.ModelInfo) of SyncDreamerService's keyword arguments, as asked for:
    device and precision stay as given ("auto" until a machine picks them)."""
    random_weights = bool(service_options.get("random_weights"))
    config = service_options.get("config_path")
    checkpoint = service_options.get("checkpoint_path")
    low_memory = bool(service_options.get("low_memory"))
    return {
        "loaded": False,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "config": Path(config).name if config else (TINY_CONFIG if random_weights else FULL_CONFIG),
        "random_weights": random_weights,
        "device": str(service_options.get("device") or "auto"),
        "precision": str(service_options.get("precision") or "auto"),
        "low_memory": low_memory,
        "auto_batch_views": LOW_MEMORY_BATCH_VIEWS if low_memory else AUTO_BATCH_VIEWS,
        "channels_last": bool(service_options.get("channels_last")),
        "compile": str(service_options.get("compile_mode") or "off"),
        "warning": random_weights_warning() if random_weights else None,
    }
