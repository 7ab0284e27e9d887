"""The proxy mesh in the installed extension: the operator reaches the bundled numpy-only
package through core/bundled.py, not through the repository."""
import pytest
from PIL import Image

from inference_server import protocol
from proxy_mesh_scene import target_views


@pytest.mark.slow
def test_installed_extension_builds_a_proxy_mesh(tmp_path, extension_zip, run_bpy_script):
    images, _ = target_views()
    folder = tmp_path / "scene_views"
    folder.mkdir()
    for name, image in zip(protocol.VIEW_FILES, images):
        Image.fromarray(image[..., :3]).save(folder / name)
    result = run_bpy_script("bl_proxy_mesh_installed.py", extension_zip, folder)
    assert result["install"] == ["FINISHED"] and result["import"] == ["FINISHED"]
    assert result["again"] == ["FINISHED"]
    ((name, vertices, parent, collection),) = result["meshes"]
    assert name == "scene_views_proxy_mesh" and parent == "scene_views_rig" and collection == "scene_views"
    assert vertices > 1000
    assert result["door_package"] == "bl_ext.user_default.glimpse_syncdreamer.inference_server.proxy_mesh"
