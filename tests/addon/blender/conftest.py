"""Test view sets for the import: sixteen recognisable views written the three ways a set arrives
(set folder with cameras.json, views-only folder, 256x4096 strip), and the reference cameras."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from view_set_files import strip_from_views, write_view_set

VIEW_COUNT = 16
SIZE = 256


def make_view(index: int) -> np.ndarray:
    """A 256x256 RGB view that cannot be mistaken for another, flipped or shifted by one pixel:
    white background, a patch of per-pixel noise at a place that depends on the index, the index
    in binary as black/grey blocks, a red mark top left and one-pixel coloured borders."""
    rng = np.random.default_rng(1000 + index)
    view = np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    top, left = 40 + 5 * index, 60 + 3 * index
    view[top : top + 90, left : left + 110] = rng.integers(0, 256, (90, 110, 3), dtype=np.uint8)
    for bit in range(4):
        shade = 0 if (index >> bit) & 1 else 170
        view[200:230, 20 + 40 * bit : 50 + 40 * bit] = shade
    view[8:24, 8:40] = (220, 30, 30)
    view[0, :] = (0, 0, 255)
    view[:, SIZE - 1] = (0, 160, 0)
    return view


@pytest.fixture(scope="session")
def view_arrays():
    return [make_view(index) for index in range(VIEW_COUNT)]


def _metadata():
    return {
        "model": {"name": "SyncDreamer", "config": "syncdreamer.yaml", "checkpoint": "test.ckpt",
                  "checkpoint_sha256": None, "random_weights": False},
        "generation": {"seed": 1, "steps": 1, "cfg_scale": 2.0, "elevation_deg": 30.0, "crop_size": 200,
                       "sampler": "ddim", "eta": 1.0, "precision": "float32", "device": "cpu",
                       "batch_view_num": 8, "sample_index": 0, "sample_count": 1,
                       "input_file": "test.png", "background": "keep"},
        "warning": None,
    }


@pytest.fixture(scope="session")
def sets_root(tmp_path_factory, view_arrays):
    """<root>/cat_set (server layout), <root>/views_only/ and <root>/strips/0.png."""
    root = tmp_path_factory.mktemp("view_sets")
    views = [Image.fromarray(array) for array in view_arrays]
    write_view_set(root / "cat_set", views, views[0], _metadata())
    (root / "views_only").mkdir()
    for index, view in enumerate(views):
        view.save(root / "views_only" / f"view_{index:02d}.png")
    (root / "strips").mkdir()
    strip_from_views(views).save(root / "strips" / "0.png")
    return root


@pytest.fixture(scope="session")
def set_folder(sets_root):
    return sets_root / "cat_set"


@pytest.fixture(scope="session")
def views_only_folder(sets_root):
    return sets_root / "views_only"


@pytest.fixture(scope="session")
def strip_file(sets_root):
    return sets_root / "strips" / "0.png"


@pytest.fixture
def scratch_copy(tmp_path, set_folder):
    """A private copy of the set folder that a test may damage."""
    def copy(name="copied_set"):
        return shutil.copytree(set_folder, tmp_path / name)
    return copy


@pytest.fixture(scope="session")
def reference_cameras(data_dir):
    """camera-16.json, with each pose turned into a Blender camera-to-world matrix here, from the
    facts alone: inverse of the OpenCV world-to-camera, then flip the camera's y and z axes."""
    data = json.loads((data_dir / "reference" / "camera-16.json").read_text())
    c2w = []
    for pose in data["world_to_camera_opencv"]:
        w2c = np.vstack([np.asarray(pose, dtype=np.float64), [0, 0, 0, 1]])
        c2w.append(np.linalg.inv(w2c) @ np.diag([1.0, -1.0, -1.0, 1.0]))
    data["camera_to_world_blender"] = c2w
    return data


@pytest.fixture
def scene():
    """An empty factory scene (bpy imported here, so the plain-Python tests do not need it)."""
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


@pytest.fixture
def render_to_array(tmp_path):
    """Render the scene's camera to an 8-bit PNG and return it as a (256, 256, 3|4) uint8 array."""
    import bpy

    def render(scene, name="render", alpha=False):
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGBA" if alpha else "RGB"
        scene.render.image_settings.color_depth = "8"
        scene.render.filepath = str(tmp_path / f"{name}.png")
        bpy.ops.render.render(write_still=True)
        with Image.open(scene.render.filepath) as image:
            return np.asarray(image.convert("RGBA" if alpha else "RGB"))

    return render
