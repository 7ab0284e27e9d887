"""The add-on's door to the one camera implementation, `inference_server/cameras.py`.

Everything in the add-on imports camera math from here; the camera module itself is reached
through `bundled`, like all the server code the add-on uses. Only the Blender camera settings for a given K (lens and
shift; the camera module knows the focal length only) are written here.
"""
from __future__ import annotations

import numpy as np

from .bundled import cameras

SENSOR_WIDTH_MM = cameras.BLENDER_SENSOR_WIDTH_MM
LENS_MM = cameras.BLENDER_LENS_MM


def fixed_target_views() -> list:
    """The model's sixteen cameras as cameras.json `views` entries (for sets without the file)."""
    return cameras.cameras_json_views()


def blender_camera_to_world(world_to_camera_opencv) -> np.ndarray:
    """Blender camera matrix_world (4x4) from an OpenCV world-to-camera matrix (3x4 or 4x4)."""
    w2c = np.asarray(world_to_camera_opencv, dtype=np.float64)
    if w2c.shape == (3, 4):
        w2c = np.vstack([w2c, [0.0, 0.0, 0.0, 1.0]])
    return cameras.opencv_w2c_to_blender_c2w(w2c)


def blender_camera_settings(K, image_size, sensor_width_mm: float = SENSOR_WIDTH_MM) -> dict:
    """Lens and shift of a Blender camera (sensor fit horizontal) whose render at `image_size`
    (width, height) has the pixel intrinsics K (square pixels: fx == fy)."""
    K = np.asarray(K, dtype=np.float64)
    width, height = image_size
    # Shift is measured in units of the larger image side; +x moves the frustum right, +y up.
    larger_side = max(width, height)
    return {
        "lens": cameras.lens_mm_from_focal_px(K[0, 0], width, sensor_width_mm),
        "sensor_width": sensor_width_mm,
        "sensor_fit": "HORIZONTAL",
        "shift_x": (width / 2.0 - K[0, 2]) / larger_side,
        "shift_y": (K[1, 2] - height / 2.0) / larger_side,
    }


def intrinsics_of_blender_camera(lens, sensor_width_mm, shift_x, shift_y, image_size) -> np.ndarray:
    """The pixel K (OpenCV convention) of a Blender camera with horizontal sensor fit rendered at
    `image_size` (width, height): the inverse of `blender_camera_settings`."""
    width, height = image_size
    larger_side = max(width, height)
    focal = cameras.focal_px_from_lens(lens, width, sensor_width_mm)
    return np.array(
        [
            [focal, 0.0, width / 2.0 - shift_x * larger_side],
            [0.0, focal, height / 2.0 + shift_y * larger_side],
            [0.0, 0.0, 1.0],
        ]
    )
