"""camera_math finds the camera module both ways: from the repository (top-level
`inference_server`) and inside the built extension (a sibling package, reached relatively)."""
from glimpse_syncdreamer_addon.core import camera_math


def test_from_the_repository():
    assert camera_math.cameras.__name__ == "inference_server.cameras"


def test_inside_the_extension_layout(run_in_extension_layout):
    # the zip's layout: <ext>/__init__.py, <ext>/core/camera_math.py, <ext>/inference_server/
    probe = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('inference_server') is None, 'repository leaked onto sys.path'\n"
        "from bl_ext_test.core import camera_math\n"
        "print(camera_math.cameras.__name__, camera_math.LENS_MM)\n"
    )
    result = run_in_extension_layout("camera_math.py", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bl_ext_test.inference_server.cameras", "35.0"]
