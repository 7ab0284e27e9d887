"""SyncDreamer in PyTorch: the model, its DDIM sampler and checkpoint loading (docs/contracts.md §1).

    model = ldm.build_model("configs/syncdreamer.yaml", device="cuda", dtype=torch.float16)
    ldm.load_checkpoint(model, "ckpt/syncdreamer-pretrain.ckpt")
    views = ldm.generate(model, image, elevation_deg=30.0, generator=torch.Generator().manual_seed(0))
"""
from ldm.generate import generate
from ldm.models.syncdreamer import SyncDreamer, build_model
from ldm.progress import Cancelled, Progress


def __getattr__(name):
    # Checkpoint helpers load lazily: importing ldm never pulls in the file readers.
    if name in ("load_checkpoint", "convert_checkpoint", "CheckpointError", "load_state_dict_strict"):
        from ldm import checkpoint
        return getattr(checkpoint, name)
    raise AttributeError(f"module 'ldm' has no attribute {name!r}")


__all__ = ["Cancelled", "CheckpointError", "Progress", "SyncDreamer", "build_model",
           "convert_checkpoint", "generate", "load_checkpoint", "load_state_dict_strict"]
