"""The add-on's door to the proxy mesh, inside the extension's layout, in a Python that has only
numpy and the standard library (as Blender's): the bundled package imports and builds a mesh."""
from glimpse_syncdreamer_addon.core import bundled


def test_from_the_repository():
    assert bundled.proxy_mesh.__name__ == "inference_server.proxy_mesh"


def test_numpy_only_inside_the_extension_layout(run_in_extension_layout):
    probe = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('inference_server') is None, 'repository leaked onto sys.path'\n"
        "import numpy as np\n"
        "from bl_ext_test.core.bundled import proxy_mesh\n"
        "from bl_ext_test.inference_server import cameras\n"
        "w2c, _, K = cameras.target_cameras()\n"
        "views = []\n"
        "for pose in w2c:  # a ball of radius 0.3 at the origin\n"
        "    rows, columns = np.mgrid[0:256, 0:256] + 0.5\n"
        "    rays = np.stack([columns, rows, np.ones_like(rows)], axis=-1) @ np.linalg.inv(K).T\n"
        "    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)\n"
        "    view = np.full((256, 256, 3), 255, dtype=np.uint8)\n"
        "    view[np.linalg.norm(np.cross(rays, pose[:3, 3]), axis=-1) < 0.3] = (200, 40, 40)\n"
        "    views.append(view)\n"
        "mesh = proxy_mesh.build_proxy_mesh(views, [proxy_mesh.ViewCamera(p, K, 256, 256) for p in w2c], resolution=32)\n"
        "heavy = sorted(name for name in ('PIL', 'torch', 'scipy', 'skimage', 'bpy') if name in sys.modules)\n"
        "print(proxy_mesh.__name__, len(mesh.faces) > 500, heavy)\n"
    )
    result = run_in_extension_layout("bundled.py", probe, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bl_ext_test.inference_server.proxy_mesh", "True", "[]"]
