"""The building blocks stay light: no torch anywhere, no rembg until it is needed, no Pillow in cameras."""
import subprocess
import sys

PROBE = """
import sys
import inference_server.cameras
assert "PIL" not in sys.modules, "cameras must run inside Blender, which has no Pillow"
import inference_server.errors, inference_server.generation.images, inference_server.generation.preprocess
import inference_server.generation.segmentation, inference_server.view_set.writing, inference_server.view_set.video
heavy = sorted(name for name in ("torch", "rembg", "onnxruntime", "imageio") if name in sys.modules)
assert not heavy, heavy
"""


def test_modules_import_without_heavy_packages(repo_root):
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=repo_root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_cameras_loads_as_a_module_of_another_package(repo_root):
    # the Blender extension bundles the file under its own package name
    import importlib.util

    spec = importlib.util.spec_from_file_location("some_extension.vendor.cameras",
                                                  repo_root / "inference_server" / "cameras.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.target_cameras()[0].shape == (16, 4, 4)
