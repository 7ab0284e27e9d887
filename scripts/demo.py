"""`make demo`: the whole job end to end on the shipped example image.

1. Builds the Blender extension zip (the same one a user installs).
2. Starts background Blender (the `bpy` module) in a fresh process with its own user folder,
   installs and enables the extension there, and calls `bpy.ops.glimpse3d.generate_views`:
   the add-on starts the real inference server as a child process, the server generates the
   sixteen views into an output folder, and the add-on imports them as a rig of cameras and
   image planes (scripts/demo_blender.py).
3. Saves the scene as a .blend and renders a picture of the imported rig with Cycles on the CPU.

With the real checkpoint (found where the server looks: --checkpoint, GLIMPSE_CHECKPOINT,
ckpt/, ~/.cache/glimpse3d/) the views are real. Without it the server runs the tiny model with
random weights, and the views are noise: the demo says so and how to get the weights.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

from build_extension import build_extension  # noqa: E402
from inference_server.generation.checkpoints import find_checkpoint  # noqa: E402
from inference_server.errors import SetupError  # noqa: E402

EXAMPLE_IMAGE = REPO_ROOT / "examples" / "cat.png"
# The authors' settings for this image (tests/data/testset/params.csv).
ELEVATION, CROP_SIZE = 30.0, 200
RANDOM_WEIGHTS_STEPS = 10  # the views are noise anyway; keeps the demo to about a minute here


def banner(text: str) -> None:
    print(f"\n== {text}", flush=True)


def gpu_available() -> bool:
    import torch  # only here: the rest of the demo drives the server and Blender

    return torch.cuda.is_available() or (hasattr(torch.backends, "mps") and torch.backends.mps.is_available())


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO_ROOT / "demo_output"), help="where everything goes")
    parser.add_argument("--image", default=str(EXAMPLE_IMAGE), help="input image (RGBA PNG works best)")
    parser.add_argument("--checkpoint", help="the SyncDreamer checkpoint (default: the usual places)")
    parser.add_argument("--steps", type=int, help="sampling steps (default 50; 10 with random weights)")
    parser.add_argument("--random-weights", action="store_true", help="use random weights even if a checkpoint exists")
    return parser.parse_args(argv)


def choose_weights(args) -> tuple[Path | None, list[str]]:
    """The checkpoint to use and the server arguments that say so."""
    if not args.random_weights:
        try:
            checkpoint = find_checkpoint(args.checkpoint)
        except SetupError as error:
            if args.checkpoint:
                raise
            print(f"No checkpoint found, so this demo uses RANDOM WEIGHTS.\n{error}")
        else:
            return checkpoint, ["--checkpoint", str(checkpoint)]
    print("!! RANDOM WEIGHTS: the sixteen views will be NOISE. The demo shows the whole pipeline\n"
          "!! (server, output folder, Blender import, render) but not real views. For real views:\n"
          "!!   .venv/bin/python -m inference_server download   (about 5 GB), then run make demo again.")
    return None, ["--random-weights"]


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out).resolve()
    started = time.monotonic()
    checkpoint, server_args = choose_weights(args)
    steps = args.steps or (50 if checkpoint else RANDOM_WEIGHTS_STEPS)
    if checkpoint:
        print(f"Checkpoint: {checkpoint}")
        if not gpu_available():
            print("!! No GPU found: the full model runs on the CPU, which is very slow (hours at 50 steps).\n"
                  "!! For a quick look at the pipeline: make demo ARGS=--random-weights "
                  "(or scripts/demo.py --steps 5).", flush=True)

    # A fresh output each run, so the printed paths are this run's.
    for stale in ("views", "blender_user", "demo.blend", "render.png"):
        target = out / stale
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)

    banner("Building the Blender extension")
    zip_path = build_extension(REPO_ROOT / "dist")
    print(f"Extension: {zip_path}")

    banner(f"Generating 16 views of {args.image} in background Blender ({steps} steps)")
    env = dict(os.environ)
    env["BLENDER_USER_RESOURCES"] = str(out / "blender_user")  # keep the user's own Blender untouched
    env["GLIMPSE_SERVER_PYTHON"] = sys.executable
    env["GLIMPSE_SERVER_EXTRA_ARGS"] = shlex.join(server_args)  # the add-on splits it with shlex
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, str(REPO_ROOT / "scripts" / "demo_blender.py"), "--zip", str(zip_path),
               "--image", str(Path(args.image).resolve()), "--out", str(out), "--steps", str(steps),
               "--elevation", str(ELEVATION), "--crop-size", str(CROP_SIZE)]
    result = subprocess.run(command, env=env, cwd=str(out))
    if result.returncode != 0:
        print(f"\nThe demo failed (exit {result.returncode}); the messages above say why. "
              "docs/troubleshooting.md lists the common causes.", file=sys.stderr)
        return result.returncode

    folders = sorted(p for p in (out / "views").iterdir() if p.is_dir() and not p.name.startswith("."))
    banner(f"Done in {time.monotonic() - started:.0f} s. Files:")
    print(f"  extension zip     {zip_path}")
    for folder in folders:
        print(f"  output folder     {folder}  (view_00..15.png, input.png, grid.png, cameras.json, transforms.json)")
    print(f"  Blender scene     {out / 'demo.blend'}")
    print(f"  rendered picture  {out / 'render.png'}")
    if checkpoint is None:
        print("\nReminder: RANDOM WEIGHTS were used, so the views are noise (see above for the real weights).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
