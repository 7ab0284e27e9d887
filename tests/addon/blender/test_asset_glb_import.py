"""The textured asset's GLB through Blender's own glTF importer: one mesh with a UV map, a
material whose Base Color is the embedded texture, in the set's Z-up frame."""
import bpy
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("trimesh", reason="the textured asset needs the mesh extra")

from inference_server.proxy_mesh.asset import build_asset  # noqa: E402
from inference_server.proxy_mesh.glb import write_glb  # noqa: E402
from proxy_mesh_scene import BOX, SPHERE, target_views  # noqa: E402

pytestmark = pytest.mark.blender


def test_glb_round_trip_through_blenders_gltf_importer(tmp_path):
    images, view_cameras = target_views()
    asset = build_asset([image[..., :3] for image in images], view_cameras, faces=4000, texture_size=256,
                        resolution=64)
    path = write_glb(tmp_path / "asset.glb", asset)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(path))
    (obj,) = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    assert len(obj.data.polygons) == len(asset.faces) and len(obj.data.uv_layers) == 1
    corners = np.array([list(obj.matrix_world @ v.co) for v in obj.data.vertices])
    # the same place as the asset (the importer turns glTF's Y up back into Z up)
    np.testing.assert_allclose(corners.min(axis=0), asset.vertices.min(axis=0), atol=1e-4)
    np.testing.assert_allclose(corners.max(axis=0), asset.vertices.max(axis=0), atol=1e-4)
    assert corners[:, 2].max() == pytest.approx(SPHERE[1][0][2] + SPHERE[1][1], abs=0.02)
    assert corners[:, 2].min() < BOX[1][0][2] + 0.01
    material = obj.active_material
    shader = next(node for node in material.node_tree.nodes if node.bl_idname == "ShaderNodeBsdfPrincipled")
    (link,) = shader.inputs["Base Color"].links
    image = link.from_node.image
    assert tuple(image.size) == (256, 256) and image.packed_file is not None  # embedded in the .glb
    pixels = np.array(image.pixels[:]).reshape(256, 256, 4)[::-1, :, :3]  # Blender's rows run up
    np.testing.assert_allclose(pixels * 255.0, asset.texture, atol=1.5)
    Image.fromarray(asset.texture)  # a real RGB texture
