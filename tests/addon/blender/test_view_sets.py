"""The bpy-free half of the import: finding, checking and describing a set; plane and lens math."""
import json

import numpy as np
import pytest
from PIL import Image

from glimpse_syncdreamer_addon.core import camera_math, view_sets
from glimpse_syncdreamer_addon.core.view_sets import ViewSetError


def _assert_reference_cameras(view_set, reference_cameras):
    assert len(view_set.views) == 16
    for view, c2w, azimuth in zip(
        view_set.views, reference_cameras["camera_to_world_blender"], reference_cameras["azimuths_rad"]
    ):
        np.testing.assert_allclose(view.camera_to_world, c2w, atol=1e-5)
        np.testing.assert_allclose(view.K, reference_cameras["K"], atol=1e-9)
        assert view.azimuth_deg == pytest.approx(np.degrees(azimuth), abs=1e-4)
        assert view.elevation_deg == pytest.approx(30.0)
        assert view.distance == pytest.approx(1.5)


def test_set_folder_gives_files_and_cameras(set_folder, reference_cameras):
    view_set = view_sets.read_view_set(set_folder)
    assert view_set.layout == view_sets.LAYOUT_CAMERAS_JSON
    assert view_set.name == "cat_set"
    assert view_set.source == set_folder.resolve()
    assert view_set.image_size == (256, 256)
    assert view_set.warning is None
    assert [view.image.path.name for view in view_set.views] == [f"view_{i:02d}.png" for i in range(16)]
    assert all(view.image.x_offset == 0 and not view.image.in_strip for view in view_set.views)
    _assert_reference_cameras(view_set, reference_cameras)


def test_file_inside_a_set_folder_means_the_folder(set_folder):
    for name in ("cameras.json", "view_05.png"):
        assert view_sets.read_view_set(set_folder / name).source == set_folder.resolve()


def test_views_only_folder_gets_the_fixed_cameras(views_only_folder, reference_cameras):
    view_set = view_sets.read_view_set(views_only_folder)
    assert view_set.layout == view_sets.LAYOUT_VIEWS_ONLY
    assert view_set.views[15].image.path == views_only_folder.resolve() / "view_15.png"
    _assert_reference_cameras(view_set, reference_cameras)


def test_strip_gives_column_offsets(strip_file, reference_cameras):
    for path in (strip_file, strip_file.parent):  # the file, or a folder holding one strip
        view_set = view_sets.read_view_set(path)
        assert view_set.layout == view_sets.LAYOUT_STRIP
        assert view_set.source == strip_file.resolve()
        assert view_set.name == "strips_0"  # a bare "0" says nothing in the outliner
        assert [view.image.x_offset for view in view_set.views] == [256 * i for i in range(16)]
        assert all(view.image.in_strip and view.image.path == strip_file.resolve() for view in view_set.views)
        _assert_reference_cameras(view_set, reference_cameras)


def test_missing_views_are_named(scratch_copy):
    folder = scratch_copy()
    (folder / "view_07.png").unlink()
    (folder / "view_12.png").unlink()
    with pytest.raises(ViewSetError, match=r"missing 2 of 16 views: view_07.png, view_12.png.*generate it again"):
        view_sets.read_view_set(folder)


def test_wrong_view_size_is_named(scratch_copy):
    folder = scratch_copy()
    Image.new("RGB", (128, 128), "white").save(folder / "view_03.png")
    (folder / "view_04.png").write_bytes(b"not an image")
    with pytest.raises(ViewSetError, match=r"256x256 PNG.*view_03.png is 128x128; view_04.png is not a PNG"):
        view_sets.read_view_set(folder)


@pytest.mark.parametrize(
    "version, advice", [(2, "newer Glimpse3D: update the add-on"), ("1", "damaged or was not written")]
)
def test_unknown_format_version(scratch_copy, version, advice):
    folder = scratch_copy()
    document = json.loads((folder / "cameras.json").read_text())
    document["format_version"] = version
    (folder / "cameras.json").write_text(json.dumps(document))
    with pytest.raises(ViewSetError, match=f"format version.*reads version 1.*{advice}"):
        view_sets.read_view_set(folder)


def test_damaged_cameras_json(scratch_copy):
    folder = scratch_copy()
    (folder / "cameras.json").write_text('{"format": ')
    with pytest.raises(ViewSetError, match="not valid JSON.*delete cameras.json"):
        view_sets.read_view_set(folder)
    (folder / "cameras.json").write_text('{"format": "something-else"}')
    with pytest.raises(ViewSetError, match="not a Glimpse3D view set description"):
        view_sets.read_view_set(folder)


def test_views_listed_wrongly(scratch_copy):
    folder = scratch_copy()
    document = json.loads((folder / "cameras.json").read_text())
    del document["views"][3]["K"]
    (folder / "cameras.json").write_text(json.dumps(document))
    with pytest.raises(ViewSetError, match="view 3: K is missing"):
        view_sets.read_view_set(folder)
    document["views"] = document["views"][:15]
    (folder / "cameras.json").write_text(json.dumps(document))
    with pytest.raises(ViewSetError, match="lists 15 views; a SyncDreamer set has 16"):
        view_sets.read_view_set(folder)


def test_not_a_set(tmp_path, strip_file):
    with pytest.raises(ViewSetError, match="does not exist"):
        view_sets.read_view_set(tmp_path / "nowhere")
    Image.new("RGB", (300, 200), "white").save(tmp_path / "photo.png")
    with pytest.raises(ViewSetError, match="is not a view set: it holds no cameras.json"):
        view_sets.read_view_set(tmp_path)
    with pytest.raises(ViewSetError, match=r"photo.png is 300x200 pixels; a strip of sixteen views is 4096x256"):
        view_sets.read_view_set(tmp_path / "photo.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ViewSetError, match="notes.txt is not a PNG image"):
        view_sets.read_view_set(tmp_path / "notes.txt")
    for name in ("0.png", "1.png"):
        (tmp_path / name).write_bytes(strip_file.read_bytes())
    with pytest.raises(ViewSetError, match=r"holds 2 strips.*0.png, 1.png.*Choose one"):
        view_sets.read_view_set(tmp_path)


def test_plane_through_the_origin_fills_the_frustum(set_folder):
    view_set = view_sets.read_view_set(set_folder)
    for view in view_set.views:
        assert view_sets.origin_depth(view) == pytest.approx(1.5, abs=1e-6)
        placement = view_sets.plane_placement(view, view_set.image_size)
        # 256 pixels at 280 px focal length, 1.5 away: 1.5 * 256 / 280 wide, centred on the axis
        assert placement.width == pytest.approx(1.5 * 256 / 280)
        assert placement.height == pytest.approx(1.5 * 256 / 280)
        assert placement.center == pytest.approx((0.0, 0.0, -1.5))
    # the plane's corners project onto the image corners (Blender camera axes -> OpenCV pixels)
    view = view_set.views[3]
    placement = view_sets.plane_placement(view, view_set.image_size, distance=0.8)
    cx, cy, cz = placement.center
    for sx, sy, pixel in ((-1, 1, (0, 0)), (1, -1, (256, 256))):
        corner = np.array([cx + sx * placement.width / 2, cy + sy * placement.height / 2, cz])
        opencv = corner * np.array([1, -1, -1])
        projected = view.K @ opencv
        assert projected[:2] / projected[2] == pytest.approx(pixel)
    with pytest.raises(ValueError, match="greater than zero"):
        view_sets.plane_placement(view, view_set.image_size, distance=-1.0)


def test_marker_frames():
    assert view_sets.marker_frames(5) == list(range(5, 21))


def test_blender_lens_for_k():
    K = camera_math.cameras.intrinsics()
    settings = camera_math.blender_camera_settings(K, (256, 256))
    assert settings == {"lens": 35.0, "sensor_width": 32.0, "sensor_fit": "HORIZONTAL", "shift_x": 0.0, "shift_y": 0.0}
    off_centre = np.array([[300.0, 0, 120.0], [0, 300.0, 140.0], [0, 0, 1]])
    settings = camera_math.blender_camera_settings(off_centre, (256, 256))
    back = camera_math.intrinsics_of_blender_camera(
        settings["lens"], settings["sensor_width"], settings["shift_x"], settings["shift_y"], (256, 256)
    )
    np.testing.assert_allclose(back, off_centre, atol=1e-9)
