"""Models: SyncDreamer and its builder."""
from ldm.models.syncdreamer import Conditioning, SyncDreamer, build_model

__all__ = ["Conditioning", "SyncDreamer", "build_model"]
