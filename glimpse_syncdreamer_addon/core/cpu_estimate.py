"""How long a generation takes on the CPU, said before it starts. No bpy.

The figures were measured on this project's build machine (2 CPU cores, no GPU, torch 2.13.0 CPU
build, float32) with the bench command; README.md, Performance, lists them with their commands:
- full model: 55.6 s per denoising step (16 views, guidance 2.0), 60.0 s to decode the 16 views;
- miniature (`--random-weights`): 60.0 s for 50 steps, of which 59 s sampling.
A machine with more or faster cores takes less; the estimate says which machine it comes from.
"""
from __future__ import annotations

FULL_STEP_S, FULL_DECODE_S = 55.6, 60.0
TINY_STEP_S, TINY_DECODE_S = 59.0 / 50, 1.0
START_S = 4.5  # process start to READY with the full model (serve --preload), measured the same way
MEASURED_ON = "2 CPU cores"


def cpu_seconds(steps: int, samples: int = 1, *, random_weights: bool = False) -> float:
    step_s, decode_s = (TINY_STEP_S, TINY_DECODE_S) if random_weights else (FULL_STEP_S, FULL_DECODE_S)
    return START_S + max(samples, 1) * (steps * step_s + decode_s)


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cpu_estimate_text(steps: int, samples: int = 1, *, random_weights: bool = False) -> str:
    """One line for the panel, e.g. 'On the CPU: about 48 min (50 steps; measured on 2 CPU cores)'."""
    total = cpu_seconds(steps, samples, random_weights=random_weights)
    model = "miniature, random weights" if random_weights else "full model"
    sets = f", {samples} sets" if samples > 1 else ""
    return f"On the CPU: about {duration_text(total)} ({steps} steps{sets}, {model}; measured on {MEASURED_ON})"


def runs_on_cpu(device_pref: str, env_device: str = "", setup_report=()) -> bool:
    """Will the local server run on the CPU? The Device preference, else the installed torch
    build (Install Server's marker), else what Check Setup found."""
    if device_pref == "cpu":
        return True
    if device_pref != "auto":
        return False
    if env_device:
        return env_device == "cpu"
    return any(item.label == "device" and item.detail.startswith("no GPU") for item in setup_report or ())
