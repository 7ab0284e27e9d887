"""The closed-form cameras against the reference's camera-16.pkl values (camera-16.json)."""
import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from inference_server import cameras


@pytest.fixture(scope="module")
def reference(data_dir):
    return json.loads((data_dir / "reference" / "camera-16.json").read_text())


def test_target_poses_match_reference(reference):
    w2c, _, K = cameras.target_cameras()
    assert w2c.shape == (16, 4, 4) and w2c.dtype == np.float64
    np.testing.assert_allclose(w2c[:, :3, :], np.array(reference["world_to_camera_opencv"]), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(w2c[:, 3, :], np.tile([0.0, 0.0, 0.0, 1.0], (16, 1)))
    np.testing.assert_allclose(K, np.array(reference["K"]), atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.radians(cameras.target_azimuths_deg()), reference["azimuths_rad"], atol=1e-6, rtol=0)
    assert np.allclose(np.radians(cameras.TARGET_ELEVATION_DEG), reference["elevations_rad"], atol=1e-6)
    assert np.allclose(cameras.CAMERA_DISTANCE, reference["distances"])


def test_model_buffers_as_the_reference_registers_them(reference):
    poses, Ks, azimuth = cameras.model_buffers()
    assert (poses.shape, Ks.shape, azimuth.shape) == ((16, 3, 4), (16, 3, 3), (16,))
    assert poses.dtype == Ks.dtype == azimuth.dtype == np.float32
    np.testing.assert_allclose(poses, np.array(reference["world_to_camera_opencv"]), atol=1e-6, rtol=0)
    np.testing.assert_allclose(Ks, np.repeat(np.array(reference["K"])[None], 16, 0), atol=1e-6, rtol=0)
    # wrapped to [-pi, pi); the same angles as the stored ones; index 8 becomes -pi (facts Appendix A)
    assert np.all(azimuth >= -np.float32(math.pi)) and np.all(azimuth < math.pi)
    difference = np.angle(np.exp(1j * (azimuth.astype(np.float64) - np.array(reference["azimuths_rad"]))))
    assert np.abs(difference).max() < 1e-6
    assert azimuth[8] == pytest.approx(-math.pi, abs=1e-6)
    assert azimuth[1] == pytest.approx(0.3926990, abs=1e-7)  # Appendix A, float32 wrap artefacts
    assert azimuth[15] == pytest.approx(-0.3926995, abs=1e-7)


def test_origin_projects_to_image_centre_in_every_view():
    w2c, _, K = cameras.target_cameras()
    for matrix in w2c:
        np.testing.assert_allclose(cameras.project(K, matrix, [0.0, 0.0, 0.0]), [128.0, 128.0], atol=1e-9)


def test_projection_follows_opencv_axes():
    # view 0 sits on +x: world +y appears to the image's right, world +z towards the top
    w2c, _, K = cameras.target_cameras()
    uv = cameras.project(K, w2c[0], np.array([[0.0, 0.1, 0.0], [0.0, 0.0, 0.1]]))
    assert uv[0, 0] > 128 and abs(uv[0, 1] - 128) < 1e-9
    assert uv[1, 1] < 128 and abs(uv[1, 0] - 128) < 1e-9


def test_blender_camera_looks_at_origin_from_its_centre():
    _, c2w, _ = cameras.target_cameras()
    for i, matrix in enumerate(c2w):
        centre = matrix[:3, 3]
        np.testing.assert_allclose(centre, cameras.camera_centre(30.0, 22.5 * i), atol=1e-12)
        assert np.linalg.norm(centre) == pytest.approx(1.5)
        assert centre[2] == pytest.approx(0.75)
        looking = -matrix[:3, 2]  # a Blender camera looks along its local -z
        np.testing.assert_allclose(looking, -centre / np.linalg.norm(centre), atol=1e-12)
        up = matrix[:3, 1]
        assert up[2] > 0  # image up points to world up (no roll)
        assert abs(matrix[:3, 0][2]) < 1e-12  # image right stays horizontal
        np.testing.assert_allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(matrix[:3, :3]) == pytest.approx(1.0)


def test_round_trips():
    w2c, c2w, _ = cameras.get_camera_matrices([30.0, -10.0, 85.0, 90.0], [0.0, 123.0, 300.0, 45.0], distance=2.0)
    np.testing.assert_allclose(cameras.blender_c2w_to_opencv_w2c(c2w), w2c, atol=1e-12)
    np.testing.assert_allclose(cameras.opencv_w2c_to_blender_c2w(w2c), c2w, atol=1e-12)
    for matrix, el, az in zip(c2w, [30.0, -10.0, 85.0, 90.0], [0.0, 123.0, 300.0, 45.0]):
        np.testing.assert_allclose(matrix[:3, 3], cameras.camera_centre(el, az, 2.0), atol=1e-12)
        assert np.isfinite(matrix).all()
    lens = cameras.lens_mm_from_focal_px()
    assert lens == pytest.approx(35.0)
    assert cameras.focal_px_from_lens(lens) == pytest.approx(280.0)


def test_single_elevation_broadcasts_and_K_scales_with_size():
    w2c, c2w, K = cameras.get_camera_matrices(30.0, cameras.target_azimuths_deg(), image_size=512)
    np.testing.assert_allclose(w2c, cameras.target_cameras()[0])
    np.testing.assert_allclose(K, [[560, 0, 256], [0, 560, 256], [0, 0, 1]])


def test_radians_are_refused_and_the_unit_can_be_said():
    # the target ring given in radians by mistake: refused, with the way out in the message
    with pytest.raises(ValueError, match="takes degrees.*look like radians.*numpy.degrees.*unit='rad'"):
        cameras.get_camera_matrices(np.radians(30.0), np.radians(cameras.target_azimuths_deg()))
    in_radians = cameras.get_camera_matrices(np.radians(30.0), np.radians(cameras.target_azimuths_deg()), unit="rad")
    for got, expected in zip(in_radians, cameras.target_cameras()):
        np.testing.assert_allclose(got, expected, atol=1e-12)
    # small angles meant as degrees pass when the unit is said
    w2c, _, _ = cameras.get_camera_matrices(0.5, 1.25, unit="deg")
    np.testing.assert_allclose(np.linalg.inv(w2c[0])[:3, 3], cameras.camera_centre(0.5, 1.25), atol=1e-12)
    # whole-number degrees never look like radians, however small
    cameras.get_camera_matrices(0, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="unit must be 'deg' or 'rad'"):
        cameras.get_camera_matrices(30.0, 0.0, unit="degrees")


def test_cameras_json_views_and_transforms_agree(reference):
    views = cameras.cameras_json_views()
    transforms = cameras.transforms_json()
    assert [v["file"] for v in views] == [f"view_{i:02d}.png" for i in range(16)]
    assert [f["file_path"] for f in transforms["frames"]] == [v["file"] for v in views]
    assert (transforms["fl_x"], transforms["fl_y"], transforms["cx"], transforms["cy"]) == (280, 280, 128, 128)
    assert (transforms["w"], transforms["h"], transforms["camera_model"]) == (256, 256, "OPENCV")
    for i, (view, frame) in enumerate(zip(views, transforms["frames"])):
        assert view["index"] == i and view["azimuth_deg"] == 22.5 * i
        assert view["elevation_deg"] == 30.0 and view["distance"] == 1.5
        w2c = np.array(view["world_to_camera_opencv"])
        np.testing.assert_allclose(w2c[:3], reference["world_to_camera_opencv"][i], atol=1e-6, rtol=0)
        np.testing.assert_allclose(np.array(view["camera_to_world_blender"]),
                                   np.linalg.inv(w2c) @ np.diag([1, -1, -1, 1]), atol=1e-12)
        assert frame["transform_matrix"] == view["camera_to_world_blender"]
    json.dumps({"views": views, "transforms": transforms}, allow_nan=False)  # plain JSON types only


def test_cameras_module_imports_only_stdlib_and_numpy(repo_root: Path):
    # it is bundled into the Blender extension, where there is neither torch nor Pillow
    tree = ast.parse((repo_root / "inference_server" / "cameras.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level > 0 or node.module.split(".")[0] != "inference_server"
            if node.level == 0:
                imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "math", "numpy"}
