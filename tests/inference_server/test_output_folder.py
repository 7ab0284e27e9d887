"""The output folder: every file, the cameras.json schema, atomic writes, strips and the model-output helper."""
import json

import numpy as np
import pytest
from PIL import Image

from inference_server import cameras
from inference_server.view_set import staging
from inference_server.view_set import writing
from view_set_files import strip_from_views, views_from_strip, write_view_set
from glimpse_syncdreamer_addon.core.view_sets import read_view_set
from inference_server.errors import InputError


def make_views(seed=0):
    """16 distinct 256x256 RGB images: view i has a known solid colour."""
    return [Image.new("RGB", (256, 256), (i * 15, 255 - i * 15, (i * 37) % 256)) for i in range(16)]


def make_metadata(**model_changes):
    model = {"name": "SyncDreamer", "config": "tiny.yaml", "checkpoint": None,
             "checkpoint_sha256": None, "random_weights": False}
    model.update(model_changes)
    generation = {"seed": 7, "steps": 3, "cfg_scale": 2.0, "elevation_deg": 30.0, "crop_size": 200,
                  "sampler": "ddim", "eta": 1.0, "precision": "float32", "device": "cpu",
                  "batch_view_num": 8, "sample_index": 0, "sample_count": 1, "input_file": "cat.png",
                  "background": "alpha", "created": "2026-11-24T10:00:00Z"}
    return {"model": model, "generation": generation, "warning": None}


@pytest.fixture
def written_set(tmp_path):
    input_image = Image.new("RGB", (256, 256), (10, 20, 30))
    return write_view_set(tmp_path / "cat_0", make_views(), input_image, make_metadata())


def test_every_file_is_written(written_set, tmp_path):
    assert sorted(p.name for p in written_set.iterdir()) == sorted(writing.SET_FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["cat_0"]  # no partial folder left behind
    for i in range(16):
        with Image.open(written_set / f"view_{i:02d}.png") as view:
            assert (view.format, view.mode, view.size) == ("PNG", "RGB", (256, 256))
            assert view.getpixel((100, 100)) == make_views()[i].getpixel((0, 0))
    with Image.open(written_set / "input.png") as input_image:
        assert input_image.size == (256, 256) and input_image.getpixel((0, 0)) == (10, 20, 30)
    with Image.open(written_set / "grid.png") as grid:
        assert grid.size == (1024, 1024)
        for i in range(16):  # row-major, view 0 top left
            row, column = divmod(i, 4)
            assert grid.getpixel((column * 256 + 128, row * 256 + 128)) == make_views()[i].getpixel((0, 0))


def test_cameras_json_schema_and_values(written_set, data_dir):
    content = json.loads((written_set / "cameras.json").read_text())
    reference = json.loads((data_dir / "reference" / "camera-16.json").read_text())
    assert content["format"] == "glimpse3d-syncdreamer-views" and content["format_version"] == 1
    assert content["warning"] is None and content["image_size"] == [256, 256]
    assert content["model"] == make_metadata()["model"]
    assert content["generation"] == make_metadata()["generation"]
    assert len(content["views"]) == 16
    for i, view in enumerate(content["views"]):
        assert set(view) == {"index", "file", "azimuth_deg", "elevation_deg", "distance", "K",
                             "world_to_camera_opencv", "camera_to_world_blender"}
        assert (view["index"], view["file"], view["azimuth_deg"]) == (i, f"view_{i:02d}.png", 22.5 * i)
        K = np.array(view["K"])
        w2c = np.array(view["world_to_camera_opencv"])
        c2w = np.array(view["camera_to_world_blender"])
        np.testing.assert_allclose(K, reference["K"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(w2c[:3], reference["world_to_camera_opencv"][i], atol=1e-6, rtol=0)
        np.testing.assert_allclose(view["azimuth_deg"], np.degrees(reference["azimuths_rad"][i]), atol=1e-4)
        np.testing.assert_allclose(c2w, np.linalg.inv(w2c) @ np.diag([1, -1, -1, 1]), atol=1e-12)
        # the world origin lands on the image centre, computed only from the file's numbers
        origin = K @ (w2c @ [0.0, 0.0, 0.0, 1.0])[:3]
        np.testing.assert_allclose(origin[:2] / origin[2], [128.0, 128.0], atol=1e-9)


def test_transforms_json_is_nerfstudio_style(written_set):
    transforms = json.loads((written_set / "transforms.json").read_text())
    content = json.loads((written_set / "cameras.json").read_text())
    assert {"fl_x", "fl_y", "cx", "cy", "w", "h", "camera_model", "frames"} <= set(transforms)
    assert (transforms["fl_x"], transforms["cx"], transforms["w"], transforms["h"]) == (280.0, 128.0, 256, 256)
    for frame, view in zip(transforms["frames"], content["views"]):
        assert (written_set / frame["file_path"]).is_file()
        assert frame["transform_matrix"] == view["camera_to_world_blender"]


def test_read_view_set_round_trip(written_set):
    view_set = read_view_set(written_set)  # as the add-on reads it
    assert view_set.metadata["generation"]["seed"] == 7
    loaded = [Image.open(view.image.path).convert("RGB") for view in view_set.views]
    assert [v.getpixel((5, 5)) for v in loaded] == [v.getpixel((5, 5)) for v in make_views()]


def test_random_weights_always_warn(tmp_path):
    folder = write_view_set(tmp_path / "rw", make_views(), Image.new("RGB", (256, 256)),
                                          make_metadata(random_weights=True))
    content = json.loads((folder / "cameras.json").read_text())
    assert content["warning"].startswith("RANDOM WEIGHTS:") and content["model"]["random_weights"] is True


def test_refuses_existing_set_unless_overwrite(written_set):
    newer = [Image.new("RGB", (256, 256), (1, 2, 3))] * 16
    with pytest.raises(InputError, match="already exists"):
        write_view_set(written_set, newer, Image.new("RGB", (256, 256)), make_metadata())
    with Image.open(written_set / "view_00.png") as view:
        assert view.getpixel((0, 0)) == make_views()[0].getpixel((0, 0))  # untouched
    write_view_set(written_set, newer, Image.new("RGB", (256, 256)), make_metadata(), overwrite=True)
    with Image.open(written_set / "view_00.png") as view:
        assert view.getpixel((0, 0)) == (1, 2, 3)
    assert sorted(p.name for p in written_set.parent.iterdir()) == ["cat_0"]  # no .old or .partial folder


def test_overwrite_never_deletes_a_folder_that_is_not_a_set(tmp_path):
    precious = tmp_path / "my_renders"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a view set"):
        write_view_set(precious, make_views(), Image.new("RGB", (256, 256)), make_metadata(),
                                     overwrite=True)
    assert (precious / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_renders"]


def test_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    class Boom(Exception):
        pass

    saved = []
    original_save = Image.Image.save

    def failing_save(self, fp, *args, **kwargs):
        saved.append(fp)
        if len(saved) == 5:
            raise Boom("disk full")
        return original_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(Boom):
        write_view_set(tmp_path / "cat_0", make_views(), Image.new("RGB", (256, 256)), make_metadata())
    assert list(tmp_path.iterdir()) == []  # neither the set nor the hidden partial folder


def test_failure_while_replacing_keeps_previous_set(written_set, monkeypatch):
    monkeypatch.setattr(writing.cameras, "transforms_json", lambda names: {"bad": float("nan")})
    with pytest.raises(ValueError):
        write_view_set(written_set, make_views(), Image.new("RGB", (256, 256)), make_metadata(),
                                     overwrite=True)
    assert read_view_set(written_set).metadata["generation"]["seed"] == 7
    assert sorted(p.name for p in written_set.parent.iterdir()) == ["cat_0"]


def test_bad_arguments_are_refused_before_writing(tmp_path):
    small = [Image.new("RGB", (128, 128))] * 16
    with pytest.raises(ValueError, match="256x256"):
        write_view_set(tmp_path / "a", small, Image.new("RGB", (256, 256)), make_metadata())
    with pytest.raises(ValueError, match="16 views"):
        write_view_set(tmp_path / "a", make_views()[:15], Image.new("RGB", (256, 256)), make_metadata())
    incomplete = make_metadata()
    del incomplete["generation"]["seed"]
    with pytest.raises(ValueError, match="seed"):
        write_view_set(tmp_path / "a", make_views(), Image.new("RGB", (256, 256)), incomplete)
    assert list(tmp_path.iterdir()) == []


def test_strip_round_trip():
    views = make_views()
    strip = strip_from_views(views)
    assert strip.size == (4096, 256)
    assert strip.getpixel((256 * 3 + 10, 10)) == views[3].getpixel((0, 0))
    back = views_from_strip(strip)
    assert [np.array(v).tobytes() for v in back] == [np.array(v).tobytes() for v in views]
    with pytest.raises(ValueError, match="4096x256"):
        views_from_strip(Image.new("RGB", (1024, 1024)))


def test_model_output_to_views_like_the_reference():
    decoded = np.zeros((16, 3, 256, 256), dtype=np.float32)
    decoded[0, 0, 0, 0] = 1.7     # clamped to 1 -> 255
    decoded[0, 1, 0, 0] = -3.0    # clamped to -1 -> 0
    decoded[0, 2, 0, 0] = 0.999   # (1.999 / 2) * 255 = 254.87 -> truncated to 254
    decoded[1, :, 5, 7] = [-0.5, 0.25, 0.0]  # 63.75 -> 63, 159.375 -> 159, 127.5 -> 127
    views = writing.model_output_to_views(decoded)
    assert len(views) == 16 and all(v.mode == "RGB" and v.size == (256, 256) for v in views)
    assert views[0].getpixel((0, 0)) == (255, 0, 254)
    assert views[1].getpixel((7, 5)) == (63, 159, 127)
    assert views[2].getpixel((0, 0)) == (127, 127, 127)
    decoded[3, 0, 0, 0] = np.nan
    with pytest.raises(RuntimeError, match="float32"):
        writing.model_output_to_views(decoded)
    with pytest.raises(ValueError, match="16, 3"):
        writing.model_output_to_views(np.zeros((1, 16, 3, 256, 256)))


def test_failed_final_rename_puts_previous_set_back(written_set, monkeypatch):
    real_rename = staging.os.rename

    def rename(src, dst):
        if ".partial-" in str(src):
            raise OSError("simulated failure")
        return real_rename(src, dst)

    monkeypatch.setattr(staging.os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        write_view_set(written_set, make_views(), Image.new("RGB", (256, 256)), make_metadata(),
                                     overwrite=True)
    assert read_view_set(written_set).metadata["generation"]["seed"] == 7
    assert sorted(p.name for p in written_set.parent.iterdir()) == ["cat_0"]
