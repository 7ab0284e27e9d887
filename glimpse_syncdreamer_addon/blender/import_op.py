"""File > Import > Glimpse3D Views: the operator around `scene_import.import_view_set`."""
from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import StringProperty

from ..core.api_errors import InputError
from ..core.import_options import ImportOptions
from . import generate, mesh_op, scene_import
from .props import import_options


class GLIMPSE3D_OT_import_views(bpy.types.Operator):
    """Import sixteen SyncDreamer views as a camera rig with image planes, from a set folder
    (with or without cameras.json) or a 4096x256 strip PNG"""

    bl_idname = "glimpse3d.import_views"
    bl_label = "Import Glimpse3D Views"
    bl_options = {"REGISTER", "UNDO"}

    # SKIP_SAVE: a path remembered from the last run must never leak into a scripted call.
    # The import options are the ones the generate operator and the panel share (props.py).
    __annotations__ = {
        "directory": StringProperty(
            name="Folder",
            description="A generated set folder (cameras.json, or only view_00.png ... view_15.png)",
            subtype="DIR_PATH",
            options={"SKIP_SAVE", "HIDDEN"},
        ),
        "filepath": StringProperty(
            name="File",
            description="A 4096x256 PNG strip of sixteen views, or any file inside a set folder",
            subtype="FILE_PATH",
            options={"SKIP_SAVE", "HIDDEN"},
        ),
        "filter_glob": StringProperty(default="*.png;*.json", options={"HIDDEN"}),
        **{name: prop for name, prop in import_options().items() if name != "import_result"},
        "build_proxy_mesh": mesh_op.build_option(),
    }

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        source = self._chosen_source()
        if source is None:
            self.report({"ERROR"}, "No views chosen: pick a generated set folder or a 4096x256 strip PNG.")
            return {"CANCELLED"}
        try:
            options = vars(ImportOptions.pick(self))
            del options["import_result"]  # a generation's option: an import always imports
            (collection,) = generate.import_views(source, context=context, **options).collections
        except (InputError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Imported {collection.name}: sixteen cameras with image planes.")
        if self.build_proxy_mesh:
            mesh_op.build_after_import(self, context, collection)
        warning = collection.get(scene_import.WARNING_PROPERTY)
        if warning:
            self.report({"WARNING"}, warning)
        if self.build_proxy_mesh:
            mesh_op.build_after_import(self, context, collection)
        return {"FINISHED"}

    def _chosen_source(self):
        # The file browser always fills `directory` and puts the folder itself into `filepath`
        # when no file is selected: a real file wins, otherwise the folder.
        if self.filepath and Path(bpy.path.abspath(self.filepath)).is_file():
            return Path(bpy.path.abspath(self.filepath))
        for candidate in (self.directory, self.filepath):
            if candidate:
                return Path(bpy.path.abspath(candidate))
        return None


def menu_func_import(self, context):
    self.layout.operator(GLIMPSE3D_OT_import_views.bl_idname, text="Glimpse3D Views (SyncDreamer)")


classes = (GLIMPSE3D_OT_import_views,)
