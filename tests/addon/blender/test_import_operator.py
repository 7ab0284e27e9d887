"""bpy.ops.glimpse3d.import_views, as scripts and File > Import call it."""
import bpy
import pytest

from glimpse_syncdreamer_addon.blender import import_op


@pytest.fixture(scope="module", autouse=True)
def registered():
    """Register the operator unless the add-on's own registration already did."""
    ours = [cls for cls in import_op.classes if not cls.is_registered]
    for cls in ours:
        bpy.utils.register_class(cls)
    yield
    for cls in reversed(ours):
        bpy.utils.unregister_class(cls)


def test_operator_options():
    assert import_op.GLIMPSE3D_OT_import_views.bl_idname == "glimpse3d.import_views"
    assert {"REGISTER", "UNDO"} <= import_op.GLIMPSE3D_OT_import_views.bl_options
    properties = bpy.ops.glimpse3d.import_views.get_rna_type().properties.keys()
    for name in ("directory", "filepath", "filter_glob", "plane_distance", "key_white", "show_all_planes",
                 "set_scene_settings", "bind_markers", "side_by_side", "shader", "interpolation",
                 "relative_paths", "pack_images"):
        assert name in properties


def test_import_a_folder_then_a_strip(scene, set_folder, strip_file):
    assert bpy.ops.glimpse3d.import_views(directory=str(set_folder)) == {"FINISHED"}
    assert bpy.ops.glimpse3d.import_views(filepath=str(strip_file), plane_distance=2.0) == {"FINISHED"}
    assert {"cat_set", "strips_0"} <= set(bpy.data.collections.keys())
    assert len([obj for obj in bpy.data.objects if obj.type == "CAMERA"]) == 32
    plane = bpy.data.objects["strips_0_view_04"]
    assert plane.location[:] == pytest.approx((0, 0, -2.0), abs=1e-6)
    # a file the browser hands over from inside a set folder means that set: replaced, not doubled
    assert bpy.ops.glimpse3d.import_views(filepath=str(set_folder / "view_03.png")) == {"FINISHED"}
    assert len([obj for obj in bpy.data.objects if obj.type == "CAMERA"]) == 32


def test_errors_are_reported_and_change_nothing(scene, tmp_path):
    objects = len(bpy.data.objects)
    with pytest.raises(RuntimeError, match="is not a view set.*Choose the folder a generation wrote"):
        bpy.ops.glimpse3d.import_views(directory=str(tmp_path))
    with pytest.raises(RuntimeError, match="No views chosen"):
        bpy.ops.glimpse3d.import_views()
    assert len(bpy.data.objects) == objects


def test_file_import_menu_entry():
    entries = []

    class Layout:
        def operator(self, idname, text):
            entries.append((idname, text))

    class Menu:
        layout = Layout()

    import_op.menu_func_import(Menu(), bpy.context)
    assert entries == [("glimpse3d.import_views", "Glimpse3D Views (SyncDreamer)")]


def test_undo_removes_the_import_and_redo_restores_it(scene, set_folder):
    # Background bpy has one window; undo and redo need it in the context.
    window = bpy.context.window_manager.windows[0]

    def set_objects():
        return {obj.type for obj in bpy.data.objects}, sum(obj.type == "CAMERA" for obj in bpy.data.objects)

    with bpy.context.temp_override(window=window):
        bpy.ops.ed.undo_push(message="before the import")
        # As the UI calls it: execute, then push an undo step (the positional undo flag).
        assert bpy.ops.glimpse3d.import_views("EXEC_DEFAULT", True, directory=str(set_folder),
                                              bind_markers=True) == {"FINISHED"}
        assert "cat_set" in bpy.data.collections and set_objects()[1] == 16
        bpy.ops.ed.undo()
        assert "cat_set" not in bpy.data.collections and set_objects() == (set(), 0)
        assert len(bpy.context.scene.timeline_markers) == 0
        # Redo brings the whole set back, markers bound to their cameras again.
        bpy.ops.ed.redo()
        assert "cat_set" in bpy.data.collections and set_objects()[1] == 16
        assert sum(m.camera is not None for m in bpy.context.scene.timeline_markers) == 16
