"""Network building blocks of SyncDreamer (UNet, depth attention, volumes, VAE, CLIP)."""
