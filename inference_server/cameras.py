"""The sixteen SyncDreamer target cameras, in closed form, and their conversions.

The one implementation of the camera math for the server, the output folder and the Blender
add-on (which bundles this file), so it imports only the standard library and numpy.

Conventions (reference/syncdreamer_facts.md §5):
- World: right-handed, z up (as in Blender); the object sits at the origin.
- View i: elevation 30 degrees, azimuth 22.5 * i degrees (counter-clockwise seen from +z,
  from +x towards +y), distance 1.5, always looking at the origin. View 0 shares the input
  camera's azimuth. The input elevation never moves a target camera.
- World-to-camera matrices use OpenCV camera axes (x right, y down, z forward); a pixel is
  (u, v) = (K @ x_cam)[:2] / z_cam, with K = [[280, 0, 128], [0, 280, 128], [0, 0, 1]] at 256 px.
- Blender and nerfstudio/OpenGL camera-to-world matrices are the inverse with the camera's
  y and z axes flipped (x right, y up, looking along -z).
"""
from __future__ import annotations

import math

import numpy as np

VIEW_COUNT = 16
TARGET_ELEVATION_DEG = 30.0
AZIMUTH_STEP_DEG = 360.0 / VIEW_COUNT  # 22.5
CAMERA_DISTANCE = 1.5
IMAGE_SIZE = 256
FOCAL_PX = 280.0  # a 35 mm lens on a 32 mm wide sensor at 256 px
BLENDER_LENS_MM = 35.0
BLENDER_SENSOR_WIDTH_MM = 32.0

# OpenCV camera axes (y down, z forward) <-> OpenGL/Blender camera axes (y up, looking along -z)
_FLIP_YZ = np.diag([1.0, -1.0, -1.0, 1.0])


def target_azimuths_deg() -> np.ndarray:
    """Azimuths of the 16 target views in degrees: 0, 22.5, ..., 337.5."""
    return np.arange(VIEW_COUNT, dtype=np.float64) * AZIMUTH_STEP_DEG


def camera_centre(elevation_deg: float, azimuth_deg: float, distance: float = CAMERA_DISTANCE) -> np.ndarray:
    """World position (3,) of a camera on the sphere of radius `distance` around the origin."""
    el, az = math.radians(elevation_deg), math.radians(azimuth_deg)
    return distance * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])


def world_to_camera_opencv(elevation_deg: float, azimuth_deg: float,
                           distance: float = CAMERA_DISTANCE) -> np.ndarray:
    """4x4 world-to-camera matrix (OpenCV axes) of a camera looking at the origin, float64."""
    centre = camera_centre(elevation_deg, azimuth_deg, distance)
    forward = -centre / np.linalg.norm(centre)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right_norm = np.linalg.norm(right)
    if right_norm < 1e-12:
        # straight above or below: "right" is undefined by the up axis, so keep the
        # azimuth's own tangent direction to stay continuous with nearby elevations
        az = math.radians(azimuth_deg)
        right = np.array([math.sin(az), -math.cos(az), 0.0])
    else:
        right = right / right_norm
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    w2c = np.eye(4)
    w2c[:3, :3] = rotation
    w2c[:3, 3] = -rotation @ centre
    return w2c


def opencv_w2c_to_blender_c2w(w2c: np.ndarray) -> np.ndarray:
    """Blender (and OpenGL/nerfstudio) camera-to-world 4x4 from an OpenCV world-to-camera 4x4.

    Accepts one matrix (4, 4) or a stack (..., 4, 4).
    """
    w2c = np.asarray(w2c, dtype=np.float64)
    return np.linalg.inv(w2c) @ _FLIP_YZ


def blender_c2w_to_opencv_w2c(c2w: np.ndarray) -> np.ndarray:
    """The inverse of `opencv_w2c_to_blender_c2w`."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return np.linalg.inv(c2w @ _FLIP_YZ)


def intrinsics(image_size: int = IMAGE_SIZE, focal_px: float | None = None) -> np.ndarray:
    """3x3 pinhole K with the principal point at the image centre, float64.

    Without `focal_px`, the reference's K scaled to the image size (280 px at 256 px).
    """
    if focal_px is None:
        focal_px = FOCAL_PX * image_size / IMAGE_SIZE
    half = image_size / 2.0
    return np.array([[focal_px, 0.0, half], [0.0, focal_px, half], [0.0, 0.0, 1.0]])


def focal_px_from_lens(lens_mm: float = BLENDER_LENS_MM, image_width_px: int = IMAGE_SIZE,
                       sensor_width_mm: float = BLENDER_SENSOR_WIDTH_MM) -> float:
    """Focal length in pixels of a Blender camera (sensor fit horizontal)."""
    return lens_mm * image_width_px / sensor_width_mm


def lens_mm_from_focal_px(focal_px: float = FOCAL_PX, image_width_px: int = IMAGE_SIZE,
                          sensor_width_mm: float = BLENDER_SENSOR_WIDTH_MM) -> float:
    """Blender lens in mm that gives `focal_px` (sensor fit horizontal): 35 mm for 280 px at 256."""
    return focal_px * sensor_width_mm / image_width_px


def get_camera_matrices(elevations_deg, azimuths_deg, distance: float = CAMERA_DISTANCE,
                        image_size: int = IMAGE_SIZE, unit: str | None = None):
    """Cameras looking at the origin from the given angles, in DEGREES.

    `elevations_deg` and `azimuths_deg` are sequences of the same length (a single number is
    repeated to the other's length). Returns (w2c_opencv (N,4,4), c2w_blender (N,4,4), K (3,3)),
    all float64.

    Angles that look like radians (all within a quarter turn of elevation and a full turn of
    azimuth, and not whole numbers) are refused with a ValueError, because they would silently
    give cameras almost on the x axis. `unit="deg"` takes such small angles as degrees after
    all; `unit="rad"` converts radians.
    """
    if unit not in (None, "deg", "rad"):
        raise ValueError(f"unit must be 'deg' or 'rad', got {unit!r}")
    elevations = np.atleast_1d(np.asarray(elevations_deg, dtype=np.float64))
    azimuths = np.atleast_1d(np.asarray(azimuths_deg, dtype=np.float64))
    if unit == "rad":
        elevations, azimuths = np.degrees(elevations), np.degrees(azimuths)
    elif unit is None and _look_like_radians(elevations, azimuths):
        raise ValueError(
            f"get_camera_matrices takes degrees, but elevations_deg={elevations.tolist()} and "
            f"azimuths_deg={azimuths.tolist()} look like radians. Pass numpy.degrees(...) of them, or "
            "unit='rad'; if these small angles are meant as degrees, pass unit='deg'")
    elevations, azimuths = np.broadcast_arrays(elevations, azimuths)
    if elevations.ndim != 1:
        raise ValueError(f"elevations_deg and azimuths_deg must be numbers or 1-D sequences, "
                         f"got shape {elevations.shape}")
    w2c = np.stack([world_to_camera_opencv(el, az, distance) for el, az in zip(elevations, azimuths)])
    return w2c, opencv_w2c_to_blender_c2w(w2c), intrinsics(image_size)


def _look_like_radians(elevations: np.ndarray, azimuths: np.ndarray) -> bool:
    # Degrees people use are mostly whole numbers or larger than a turn in radians (22.5, 30,
    # 90); radians of such angles are small fractions (0.39, 0.52, 1.57).
    angles = np.concatenate([elevations, azimuths])
    fractional = np.abs(angles - np.round(angles)) > 1e-9
    return bool(np.all(np.abs(elevations) <= math.pi / 2 + 1e-9) and np.all(np.abs(azimuths) <= 2 * math.pi + 1e-9)
                and np.any(fractional))


def target_cameras():
    """The 16 SyncDreamer target cameras: (w2c_opencv (16,4,4), c2w_blender (16,4,4), K (3,3))."""
    return get_camera_matrices(TARGET_ELEVATION_DEG, target_azimuths_deg(), CAMERA_DISTANCE)


def project(K: np.ndarray, w2c: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of world points (N, 3) (or one point (3,) -> (2,))."""
    points = np.asarray(points, dtype=np.float64)
    single = points.ndim == 1
    points = np.atleast_2d(points)
    w2c = np.asarray(w2c, dtype=np.float64)
    in_camera = points @ w2c[:3, :3].T + w2c[:3, 3]
    pixels = in_camera @ np.asarray(K, dtype=np.float64).T
    uv = pixels[:, :2] / pixels[:, 2:3]
    return uv[0] if single else uv


def view_file_name(index: int) -> str:
    """File name of view `index` in an output folder: view_00.png ... view_15.png."""
    return f"view_{index:02d}.png"


def _as_lists(matrix: np.ndarray) -> list:
    # plain floats, and no "-0.0" in the JSON
    return [[float(value) + 0.0 for value in row] for row in np.asarray(matrix, dtype=np.float64)]


def cameras_json_views(file_names=None) -> list:
    """The `views` list of cameras.json (docs/contracts.md §2) for the 16 target views."""
    w2c, c2w, K = target_cameras()
    azimuths = target_azimuths_deg()
    names = list(file_names) if file_names is not None else [view_file_name(i) for i in range(VIEW_COUNT)]
    if len(names) != VIEW_COUNT:
        raise ValueError(f"need {VIEW_COUNT} file names, got {len(names)}")
    return [
        {
            "index": i,
            "file": names[i],
            "azimuth_deg": float(azimuths[i]),
            "elevation_deg": TARGET_ELEVATION_DEG,
            "distance": CAMERA_DISTANCE,
            "K": _as_lists(K),
            "world_to_camera_opencv": _as_lists(w2c[i]),
            "camera_to_world_blender": _as_lists(c2w[i]),
        }
        for i in range(VIEW_COUNT)
    ]


def transforms_json(file_names=None) -> dict:
    """nerfstudio / NeRF transforms.json for the 16 target views (OpenGL camera-to-world)."""
    _, c2w, K = target_cameras()
    names = list(file_names) if file_names is not None else [view_file_name(i) for i in range(VIEW_COUNT)]
    if len(names) != VIEW_COUNT:
        raise ValueError(f"need {VIEW_COUNT} file names, got {len(names)}")
    return {
        "camera_model": "OPENCV",
        "fl_x": float(K[0, 0]),
        "fl_y": float(K[1, 1]),
        "cx": float(K[0, 2]),
        "cy": float(K[1, 2]),
        "w": IMAGE_SIZE,
        "h": IMAGE_SIZE,
        "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0,
        # for trainers of the original NeRF / instant-ngp format
        "camera_angle_x": 2.0 * math.atan(IMAGE_SIZE / (2.0 * float(K[0, 0]))),
        "frames": [{"file_path": names[i], "transform_matrix": _as_lists(c2w[i])} for i in range(VIEW_COUNT)],
    }


def model_buffers():
    """The model's camera buffers as the reference registers them (facts §5.1, Appendix A).

    Returns (poses (16,3,4) float32 world-to-camera [R|t], Ks (16,3,3) float32,
    azimuth (16,) float32 in radians wrapped to [-pi, pi)); the caller makes tensors of them.
    """
    w2c, _, K = target_cameras()
    poses = w2c[:, :3, :].astype(np.float32)
    Ks = np.repeat(K[None].astype(np.float32), VIEW_COUNT, axis=0)
    # the reference stores float32 radians and wraps them in float32 arithmetic
    azimuth = np.radians(target_azimuths_deg()).astype(np.float32)
    azimuth = ((azimuth + np.float32(math.pi)) % np.float32(2 * math.pi) - np.float32(math.pi)).astype(np.float32)
    return poses, Ks, azimuth
