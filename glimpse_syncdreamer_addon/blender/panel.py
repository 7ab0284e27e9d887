"""The Glimpse3D tab in the 3D viewport's sidebar (N). It only draws `runtime.session.state`
and the scene's settings; every action is an operator."""
import os
import textwrap

import bpy

from ..core import panel_state as ps
from ..core.server_settings import LOCAL
from . import first_run, preview, runtime
from .settings import ADDON_PACKAGE, addon_prefs

STATE_ICONS = {ps.STOPPED: "RADIOBUT_OFF", ps.STARTING: "SORTTIME", ps.READY: "RADIOBUT_ON",
               ps.BUSY: "RENDER_ANIMATION", ps.ERROR: "ERROR"}


def _wrapped(layout, context, text: str, icon: str = "NONE", max_lines: int = 14) -> None:
    """Long messages as several labels that fit the sidebar's width."""
    scale = context.preferences.system.ui_scale or 1.0  # 0 in background mode
    width = max(20, int(context.region.width / (7 * scale)))
    lines = [piece for line in text.splitlines() for piece in (textwrap.wrap(line, width) or [""])]
    col = layout.column(align=True)
    for i, line in enumerate(lines[:max_lines]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1")


class _SidebarPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Glimpse3D"


def _draw_server(layout, context, state):
    box = layout.box()
    row = box.row(align=True)
    prefs = addon_prefs(context)
    remote = prefs is not None and prefs.server_mode != LOCAL
    row.label(text=f"{'Remote server' if remote else 'Server'}: {state.label}", icon=STATE_ICONS[state.server])
    row = box.row(align=True)
    sub = row.row(align=True)
    sub.enabled = state.can_start
    sub.operator("glimpse3d.start_server", text="Connect" if remote else "Start", icon="PLAY")
    sub = row.row(align=True)
    sub.enabled = state.can_stop
    sub.operator("glimpse3d.stop_server", text="Disconnect" if remote else "Stop", icon="SNAP_FACE")
    sub = row.row(align=True)
    sub.enabled = state.can_unload
    sub.operator("glimpse3d.unload_model", text="Unload", icon="TRASH")
    if state.error:
        err = layout.box()
        err.alert = True
        _wrapped(err, context, state.error, icon="ERROR")
        row = err.row(align=True)
        row.operator("glimpse3d.check_setup", icon="CHECKMARK")
        row.operator("preferences.addon_show", text="Preferences", icon="PREFERENCES").module = ADDON_PACKAGE



def _draw_input(layout, context, settings):
    col = layout.column()
    col.row().prop(settings, "input_source", expand=True)
    if settings.input_source == "FILE":
        col.prop(settings, "filepath", text="")
        path = bpy.path.abspath(settings.filepath)
        chosen = os.path.isfile(path)
        icon = preview.file_icon(path) if chosen else 0
    else:
        col.template_ID(settings, "image", open="image.open")
        chosen = settings.image is not None
        icon = preview.image_icon(settings.image)
    will_see, fresh = preview.model_input_preview(preview.input_key(settings))
    seen = preview.model_input_path(runtime.session.last_folders)
    row = col.row()
    if chosen:
        sub = row.column()
        sub.label(text="Your image")
        sub.template_icon(icon_value=icon, scale=5.0)
    if will_see:
        sub = row.column()
        sub.label(text="Model will see" if fresh else "Model will see (old settings)")
        sub.template_icon(icon_value=preview.file_icon(will_see), scale=5.0)
    elif seen:
        sub = row.column()
        sub.label(text="Model saw (last)")
        sub.template_icon(icon_value=preview.file_icon(seen), scale=5.0)
    if chosen:
        col.operator("glimpse3d.preview_input", text="Preview Model Input", icon="HIDE_OFF")



def _draw_generate(layout, context, state):
    if state.busy:
        layout.progress(factor=state.progress_factor, type="BAR", text=state.progress_text)
        row = layout.row()
        row.scale_y = 1.4
        row.enabled = state.can_cancel
        row.operator("glimpse3d.cancel", text="Cancel", icon="CANCEL")
    else:
        row = layout.row()
        row.scale_y = 1.4
        row.operator("glimpse3d.generate_views", text="Generate Views", icon="RENDER_STILL")
    if state.notice:
        _wrapped(layout, context, state.notice, icon="INFO")
    folders = runtime.session.last_folders
    if folders and os.path.isdir(folders[0]):
        layout.operator("wm.path_open", text="Open Output Folder", icon="FILE_FOLDER").filepath = folders[0]


class GLIMPSE3D_PT_main(_SidebarPanel, bpy.types.Panel):
    bl_label = "SyncDreamer Views"
    bl_idname = "GLIMPSE3D_PT_main"

    def draw(self, context):
        layout = self.layout
        state = runtime.session.state
        settings = context.scene.glimpse3d
        _draw_server(layout, context, state)
        first_run.draw(layout, context)  # setup steps as buttons, install/download progress, CPU time
        _draw_input(layout, context, settings)
        layout.prop(settings, "background")
        _draw_generate(layout, context, state)


class GLIMPSE3D_PT_model_settings(_SidebarPanel, bpy.types.Panel):
    bl_label = "Model Settings"
    bl_parent_id = "GLIMPSE3D_PT_main"

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = context.scene.glimpse3d
        for name in ("elevation", "crop_size", "cfg_scale", "steps"):
            layout.prop(settings, name)
        row = layout.row(align=True)
        row.prop(settings, "seed")
        row.operator("glimpse3d.new_seed", text="", icon="FILE_REFRESH")
        layout.prop(settings, "random_seed")
        layout.prop(settings, "samples")
        layout.prop(settings, "batch_views")
        if settings.batch_views == 0:
            layout.label(text="Automatic: 16 at once, 4 on a low-memory server")


class GLIMPSE3D_PT_import_settings(_SidebarPanel, bpy.types.Panel):
    bl_label = "Import"
    bl_parent_id = "GLIMPSE3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        settings = context.scene.glimpse3d
        layout.prop(settings, "import_result")
        col = layout.column()
        col.enabled = settings.import_result
        for name in ("plane_distance", "shader", "interpolation", "key_white", "show_all_planes", "side_by_side",
                     "bind_markers", "set_scene_settings", "relative_paths", "pack_images"):
            col.prop(settings, name)


classes = (GLIMPSE3D_PT_main, GLIMPSE3D_PT_model_settings, GLIMPSE3D_PT_import_settings)
