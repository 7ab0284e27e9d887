"""The sidebar's batch queue: bpy.ops.glimpse3d.queue_add, queue_start, queue_cancel_all,
queue_clear, and the Batch Queue sub-panel. Each image is generated with the panel's settings
and imported in turn; a failed image is marked and the next one goes on.

In the UI the timer (timer.py) sends the next item with generate.submit_next whenever no job
runs; in background mode queue_start works through the queue itself, with generate.generate_views
as the Python API does.
"""
from pathlib import Path

import bpy
from bpy.props import CollectionProperty, StringProperty

from ..core import batch_queue as bq
from ..core.api_errors import CancelledError, Glimpse3DError
from ..core.import_options import ImportOptions
from . import generate, runtime
from .props import IMAGE_FILTER_GLOB

STATE_ICONS = {bq.WAITING: "SORTTIME", bq.RUNNING: "RENDER_ANIMATION", bq.DONE: "CHECKMARK",
               bq.FAILED: "ERROR", bq.CANCELLED: "CANCEL"}


def run_blocking(context) -> None:
    """Background mode: generate and import every waiting item here, one after the other."""
    queue, settings = runtime.queue, context.scene.glimpse3d
    while (item := queue.next_item()) is not None:
        runtime.say(f"Glimpse3D: queue: {item.name}")
        try:
            result = generate.generate_views(item.path, context=context, **generate.job_options(settings),
                                             **vars(ImportOptions.pick(settings)))
        except CancelledError as exc:
            queue.finish(item.id, bq.CANCELLED, str(exc))
        except Glimpse3DError as exc:
            queue.finish(item.id, bq.FAILED, str(exc))
        else:
            names = [collection.name for collection in result.collections]
            queue.finish(item.id, bq.DONE, ", ".join(names) or result.folders[0], names)
        runtime.say(f"Glimpse3D: queue: {item.name}: {item.state} {item.message}".rstrip())


class GLIMPSE3D_OT_queue_add(bpy.types.Operator):
    """Add images to the batch queue: select several files, or open a folder and add them all"""

    bl_idname = "glimpse3d.queue_add"
    bl_label = "Add Images to Queue"

    __annotations__ = {
        "directory": StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE", "HIDDEN"}),
        "files": CollectionProperty(type=bpy.types.OperatorFileListElement, options={"SKIP_SAVE", "HIDDEN"}),
        "filter_glob": StringProperty(default=IMAGE_FILTER_GLOB, options={"HIDDEN", "SKIP_SAVE"}),
    }

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        folder = Path(bpy.path.abspath(self.directory)) if self.directory else None
        names = [entry.name for entry in self.files if entry.name]
        try:
            if names and folder is not None:
                added = runtime.queue.add(folder / name for name in names)
            elif folder is not None:
                added = runtime.queue.add_folder(folder)
            else:
                raise ValueError("No images chosen: select image files, or open a folder of images.")
        except ValueError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        runtime.redraw()
        self.report({"INFO"}, f"Queued {added} image(s); {runtime.queue.waiting} waiting.")
        return {"FINISHED"}


class GLIMPSE3D_OT_queue_start(bpy.types.Operator):
    """Generate and import the waiting images one after the other, with the panel's settings"""

    bl_idname = "glimpse3d.queue_start"
    bl_label = "Start Queue"

    @classmethod
    def poll(cls, context):
        return runtime.queue.waiting > 0 and not runtime.queue.running

    def execute(self, context):
        runtime.queue.start()
        if bpy.app.background:
            run_blocking(context)
            self.report({"INFO"}, f"Queue: {runtime.queue.summary}.")
        else:
            generate.submit_next(context)
            runtime.redraw()
        return {"FINISHED"}


class GLIMPSE3D_OT_queue_cancel_all(bpy.types.Operator):
    """Cancel the running image and every waiting one"""

    bl_idname = "glimpse3d.queue_cancel_all"
    bl_label = "Cancel All"

    @classmethod
    def poll(cls, context):
        return runtime.queue.running or runtime.queue.current is not None

    def execute(self, context):
        running = runtime.queue.cancel_all()
        if running is not None:
            generate.cancel()  # in the UI its end arrives through the timer, like any job's
            if bpy.app.background:  # here the end was taken while waiting for it
                runtime.queue.finish(running.id, bq.CANCELLED, "Cancelled.")
        runtime.redraw()
        return {"FINISHED"}


class GLIMPSE3D_OT_queue_clear(bpy.types.Operator):
    """Remove the finished images from the queue (all of them when it is stopped)"""

    bl_idname = "glimpse3d.queue_clear"
    bl_label = "Clear Queue"

    def execute(self, context):
        runtime.queue.clear()
        runtime.redraw()
        return {"FINISHED"}


class GLIMPSE3D_PT_queue(bpy.types.Panel):
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Glimpse3D"
    bl_label = "Batch Queue"
    bl_parent_id = "GLIMPSE3D_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout, queue = self.layout, runtime.queue
        row = layout.row(align=True)
        row.operator("glimpse3d.queue_add", text="Add…", icon="ADD")
        row.operator("glimpse3d.queue_start", text="Start", icon="PLAY")
        row.operator("glimpse3d.queue_cancel_all", text="Cancel All", icon="CANCEL")
        row.operator("glimpse3d.queue_clear", text="", icon="TRASH")
        if not queue.items:
            layout.label(text="Add image files or a folder, then Start.")
            return
        layout.label(text=f"Queue: {queue.summary}")
        col = layout.column(align=True)
        for item in queue.items:
            row = col.row()
            row.label(text=item.name, icon=STATE_ICONS[item.state])
            row.label(text=item.message if item.state in (bq.FAILED, bq.DONE) else item.state.capitalize())


classes = (GLIMPSE3D_OT_queue_add, GLIMPSE3D_OT_queue_start, GLIMPSE3D_OT_queue_cancel_all,
           GLIMPSE3D_OT_queue_clear, GLIMPSE3D_PT_queue)
