"""Samplers: plain functions of a noise predictor, the initial noise and the schedule tables."""
from ldm.samplers.ddim import ddim_step, sample_ddim

__all__ = ["ddim_step", "sample_ddim"]
