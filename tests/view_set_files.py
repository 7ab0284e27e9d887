"""View sets for tests: a whole set written from images (as the pipeline does, without the
model), and the reference's 4096x256 strip of sixteen views, both ways."""
from pathlib import Path

from PIL import Image

from inference_server import cameras
from inference_server.view_set import staging
from inference_server.view_set.writing import VIEW_SIZE, build_cameras_json, write_set_files


def example_metadata() -> dict:
    """cameras.json's model and generation entries of a set that the tiny model might have made."""
    model = {"name": "SyncDreamer", "config": "tiny.yaml", "checkpoint": None, "checkpoint_sha256": None,
             "random_weights": False}
    generation = {"seed": 7, "steps": 3, "cfg_scale": 2.0, "elevation_deg": 30.0, "crop_size": 200,
                  "sampler": "ddim", "eta": 1.0, "precision": "float32", "device": "cpu", "batch_view_num": 8,
                  "sample_index": 0, "sample_count": 1, "input_file": "scene.png", "background": "alpha"}
    return {"model": model, "generation": generation, "warning": None}


def write_view_set(dest, views, input_image: Image.Image, metadata: dict, overwrite: bool = False) -> Path:
    """Write one complete view set to the folder `dest`, atomically, and return its absolute path.

    An existing set at `dest` is refused unless `overwrite`, then replaced as a whole; a folder
    that is not a view set is never replaced.
    """
    dest = Path(dest).expanduser().absolute()
    if dest.name in ("", ".", ".."):
        raise ValueError(f"not a folder name for a view set: {dest}")
    build_cameras_json(metadata)  # refuse bad metadata before anything is written
    staging.check_destination(dest, overwrite)
    with staging.Staged(dest, overwrite) as stage:
        write_set_files(stage.folder, views, input_image, metadata)
    return dest


def strip_from_views(views) -> Image.Image:
    """The reference's output image: the 16 views side by side, 4096 wide and 256 high."""
    strip = Image.new("RGB", (len(views) * VIEW_SIZE, VIEW_SIZE))
    for index, view in enumerate(views):
        strip.paste(view, (index * VIEW_SIZE, 0))
    return strip


def views_from_strip(strip: Image.Image) -> list:
    """The 16 views of a reference output image (view i in columns 256*i .. 256*i + 255)."""
    expected = (cameras.VIEW_COUNT * VIEW_SIZE, VIEW_SIZE)
    if strip.size != expected:
        raise ValueError(f"a SyncDreamer strip is {expected[0]}x{expected[1]} pixels, "
                         f"got {strip.size[0]}x{strip.size[1]}")
    strip = strip.convert("RGB")
    return [strip.crop((i * VIEW_SIZE, 0, (i + 1) * VIEW_SIZE, VIEW_SIZE)) for i in range(cameras.VIEW_COUNT)]
