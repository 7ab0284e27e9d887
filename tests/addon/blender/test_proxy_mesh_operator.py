"""bpy.ops.glimpse3d.build_proxy_mesh on imported sets: the mesh in the set's collection, parented
to its rig, in the cameras' frame, with vertex colours; the import option; errors; one undo step."""
import bpy
import numpy as np
import pytest
from PIL import Image

from glimpse_syncdreamer_addon.blender import import_op, mesh_op
from inference_server import protocol
from inference_server.proxy_mesh import build_proxy_mesh
from view_set_files import strip_from_views, write_view_set
from proxy_mesh_scene import SPHERE, target_views


@pytest.fixture(scope="module", autouse=True)
def registered():
    ours = [cls for cls in (*import_op.classes, mesh_op.GLIMPSE3D_OT_build_proxy_mesh) if not cls.is_registered]
    for cls in ours:
        bpy.utils.register_class(cls)
    yield
    for cls in reversed(ours):
        bpy.utils.unregister_class(cls)


@pytest.fixture(scope="module")
def scene_sets(tmp_path_factory):
    """The known scene's views (RGB on white) as a set folder, a views-only folder and a strip."""
    images, _ = target_views()
    views = [Image.fromarray(image[..., :3]) for image in images]
    root = tmp_path_factory.mktemp("mesh_sets")
    metadata = {"model": {"name": "SyncDreamer", "config": "tiny.yaml", "checkpoint": None,
                          "checkpoint_sha256": None, "random_weights": False},
                "generation": {"seed": 1, "steps": 1, "cfg_scale": 2.0, "elevation_deg": 30.0, "crop_size": 200,
                               "sampler": "ddim", "eta": 1.0, "precision": "float32", "device": "cpu",
                               "batch_view_num": 8, "sample_index": 0, "sample_count": 1,
                               "input_file": "scene.png", "background": "alpha"}, "warning": None}
    write_view_set(root / "scene_set", views, views[0], metadata)
    (root / "scene_views").mkdir()
    (root / "blank_views").mkdir()
    for index, (name, view) in enumerate(zip(protocol.VIEW_FILES, views)):
        view.save(root / "scene_views" / name)
        (Image.new("RGB", (256, 256), "white") if index == 4 else view).save(root / "blank_views" / name)
    (root / "strips").mkdir()
    strip_from_views(views).save(root / "strips" / "scene.png")
    return root, images


def mesh_arrays(obj):
    data = obj.data
    vertices = np.empty(len(data.vertices) * 3, dtype=np.float32)
    data.vertices.foreach_get("co", vertices)
    faces = np.empty(len(data.polygons) * 3, dtype=np.int32)
    data.polygons.foreach_get("vertices", faces)
    return vertices.reshape(-1, 3), faces.reshape(-1, 3)


def signed_volume(vertices, faces):
    a, b, c = (vertices[faces[:, i]].astype(np.float64) for i in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def proxy_object(collection):
    return next(obj for obj in collection.objects if obj.get(mesh_op.MESH_PROPERTY))


def test_operator_is_registered_with_its_options():
    properties = bpy.ops.glimpse3d.build_proxy_mesh.get_rna_type().properties.keys()
    assert {"collection", "resolution"} <= set(properties)
    assert {"REGISTER", "UNDO"} <= mesh_op.GLIMPSE3D_OT_build_proxy_mesh.bl_options
    assert "build_proxy_mesh" in bpy.ops.glimpse3d.import_views.get_rna_type().properties.keys()


def test_mesh_of_an_imported_set_in_the_rig_frame(scene, scene_sets):
    root, images = scene_sets
    assert bpy.ops.glimpse3d.import_views(directory=str(root / "scene_set")) == {"FINISHED"}
    collection = bpy.data.collections["scene_set"]
    rig = scene_import_rig(collection)
    rig.location = (1.0, 2.0, 0.5)
    rig.rotation_euler = (0.0, 0.0, 0.7)
    bpy.context.view_layer.update()
    assert bpy.ops.glimpse3d.build_proxy_mesh(resolution=64) == {"FINISHED"}  # the only set
    obj = proxy_object(collection)
    assert obj.parent == rig and obj.name in collection.objects
    assert np.allclose(np.array(obj.matrix_world), np.array(rig.matrix_world), atol=1e-6)
    vertices, faces = mesh_arrays(obj)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    assert set(np.unique(edges, axis=0, return_counts=True)[1]) == {2}  # closed manifold in Blender too
    # the same mesh as the model's fixed cameras give: the frame of the imported cameras
    _, view_cameras = target_views()
    reference = build_proxy_mesh([image[..., :3] for image in images], view_cameras, resolution=64)
    # (Blender keeps the camera matrices in float32: a few nodes right on the outline may differ)
    assert len(vertices) == pytest.approx(len(reference.vertices), rel=1e-3)
    np.testing.assert_allclose(vertices.min(axis=0), reference.vertices.min(axis=0), atol=1e-3)
    np.testing.assert_allclose(vertices.max(axis=0), reference.vertices.max(axis=0), atol=1e-3)
    assert signed_volume(vertices, faces) == pytest.approx(signed_volume(reference.vertices, reference.faces),
                                                           rel=1e-3)
    # vertex colours shown by the material; the flag of unseen vertices
    attribute = obj.data.color_attributes[mesh_op.COLOUR_ATTRIBUTE]
    colours = np.empty(len(vertices) * 4, dtype=np.float32)
    attribute.data.foreach_get("color_srgb", colours)
    top = int(np.argmax(vertices[:, 2]))
    assert np.abs(colours.reshape(-1, 4)[top, :3] * 255 - SPHERE[2]).max() < 12
    unseen = np.empty(len(vertices), dtype=bool)
    obj.data.attributes["unseen"].data.foreach_get("value", unseen)
    assert unseen.mean() == pytest.approx(reference.unseen.mean(), abs=1e-3)
    assert unseen[vertices[:, 2] < -0.31].all() and not unseen[vertices[:, 2] > 0.1].any()
    nodes = obj.active_material.node_tree.nodes
    assert any(node.bl_idname == "ShaderNodeVertexColor" and node.layer_name == mesh_op.COLOUR_ATTRIBUTE
               for node in nodes)
    # built again: replaced, not doubled
    assert bpy.ops.glimpse3d.build_proxy_mesh(collection="scene_set", resolution=64) == {"FINISHED"}
    assert sum(1 for o in collection.objects if o.get(mesh_op.MESH_PROPERTY)) == 1


def scene_import_rig(collection):
    return next(obj for obj in collection.objects if obj.type == "EMPTY" and obj.parent is None)


@pytest.mark.slow
def test_strip_and_views_only_with_the_import_option(scene, scene_sets):
    root, _ = scene_sets
    assert bpy.ops.glimpse3d.import_views(filepath=str(root / "strips" / "scene.png"),
                                          build_proxy_mesh=True) == {"FINISHED"}
    assert bpy.ops.glimpse3d.import_views(directory=str(root / "scene_views")) == {"FINISHED"}
    strip_mesh = proxy_object(bpy.data.collections["scene"])
    assert len(strip_mesh.data.vertices) > 1000
    # two sets now: the active object's set is chosen (the import selects its rig)
    assert bpy.ops.glimpse3d.build_proxy_mesh(resolution=64) == {"FINISHED"}
    views_mesh = proxy_object(bpy.data.collections["scene_views"])
    assert views_mesh.parent.name in bpy.data.collections["scene_views"].objects


def test_several_sets_and_no_choice_say_what_to_choose(scene, scene_sets):
    root, _ = scene_sets
    with pytest.raises(RuntimeError, match="no imported view set"):
        bpy.ops.glimpse3d.build_proxy_mesh()
    bpy.ops.glimpse3d.import_views(directory=str(root / "scene_set"))
    bpy.ops.glimpse3d.import_views(directory=str(root / "scene_views"))
    bpy.context.view_layer.objects.active = None
    with pytest.raises(RuntimeError, match="2 view sets .*select an object of one of them"):
        bpy.ops.glimpse3d.build_proxy_mesh()
    with pytest.raises(RuntimeError, match="No imported view set is called 'nope'"):
        bpy.ops.glimpse3d.build_proxy_mesh(collection="nope")


def test_a_view_without_the_object_is_named(scene, scene_sets):
    root, _ = scene_sets
    bpy.ops.glimpse3d.import_views(directory=str(root / "blank_views"))
    objects = len(bpy.data.objects)
    with pytest.raises(RuntimeError, match="no object in view 4"):
        bpy.ops.glimpse3d.build_proxy_mesh(resolution=64)
    assert len(bpy.data.objects) == objects


def test_one_undo_step_removes_the_mesh(scene, scene_sets):
    root, _ = scene_sets
    window = bpy.context.window_manager.windows[0]
    with bpy.context.temp_override(window=window):
        bpy.ops.ed.undo_push(message="before the import")
        bpy.ops.glimpse3d.import_views("EXEC_DEFAULT", True, directory=str(root / "scene_set"))
        count = len(bpy.data.objects)
        assert bpy.ops.glimpse3d.build_proxy_mesh("EXEC_DEFAULT", True, resolution=64) == {"FINISHED"}
        assert len(bpy.data.objects) == count + 1
        bpy.ops.ed.undo()
        assert len(bpy.data.objects) == count and "scene_set" in bpy.data.collections


def test_the_interface_builds_on_a_worker_thread(scene, scene_sets):
    """What the modal operator runs (modal operators do not run in background mode): the views are
    read on the main thread, the numpy work runs on the worker, its errors come back to report."""
    root, _ = scene_sets
    bpy.ops.glimpse3d.import_views(directory=str(root / "scene_set"))
    images, view_cameras, _ = mesh_op.gather_views(bpy.data.collections["scene_set"])
    job = mesh_op.MeshJob(images, view_cameras, 48)
    mesh = job.result(timeout=300)
    assert not job.running and len(mesh.faces) > 1000
    blank = [np.ones_like(image) for image in images]
    with pytest.raises(mesh_op.mesh_core.MeshError, match="no object in views 0, 1"):
        mesh_op.MeshJob(blank, view_cameras, 48).result(timeout=300)


class _Layout:
    """Records a panel's drawing; every call and attribute must exist in Blender's UILayout."""

    def __init__(self, calls):
        object.__setattr__(self, "calls", calls)

    def __setattr__(self, name, value):
        assert name in bpy.types.UILayout.bl_rna.properties, name

    def __getattr__(self, name):
        assert name in bpy.types.UILayout.bl_rna.functions, name

        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == "operator":
                assert hasattr(bpy.ops.glimpse3d, args[0].split(".")[1])
                return type("Properties", (), {})()
            return _Layout(self.calls)

        return call


def test_sidebar_panel_offers_the_set_it_will_mesh(scene, scene_sets):
    from types import SimpleNamespace

    def drawn():
        calls = []
        mesh_op.GLIMPSE3D_PT_proxy_mesh.draw(SimpleNamespace(layout=_Layout(calls)), bpy.context)
        return [kwargs.get("text") or (args[0] if args else "") for name, args, kwargs in calls
                if name in ("label", "operator")]

    assert drawn() == ["Import a view set first"]
    root, _ = scene_sets
    bpy.ops.glimpse3d.import_views(directory=str(root / "scene_set"))
    assert drawn() == ["glimpse3d.build_proxy_mesh", "Set: scene_set"]
