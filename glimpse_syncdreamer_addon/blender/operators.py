"""bpy.ops.glimpse3d.*: generate_views, preview_input, cancel, start_server, stop_server,
unload_model, check_setup, new_seed. (import_views is in import_op.py.)

In the UI, long work runs on worker threads and the server; these operators return at once and
the timer in timer.py follows up. In background Blender (`blender -b`, the bpy module) they
run synchronously, print progress, and report failures as errors (a RuntimeError in scripts).
"""
from pathlib import Path

import bpy
from bpy.props import StringProperty

from ..core.api_errors import Glimpse3DError
from ..core.client import ServerError
from ..core.import_options import ImportOptions, ImportPlan
from ..core.job_request import new_seed, read_image
from ..core.panel_state import progress_text
from ..core.server_process import ServerStartError
from ..core.setup_check import all_ok, format_report
from . import generate, preview, runtime
from .input_image import input_file
from .settings import server_settings, user_folder
from .props import (GENERATION_OPTION_NAMES, IMAGE_FILTER_GLOB, IMPORT_OPTION_NAMES, generation_options,
                    import_options)


def _fail(op, message: str) -> set:
    op.report({"ERROR"}, message)
    return {"CANCELLED"}


class GLIMPSE3D_OT_generate_views(bpy.types.Operator):
    """Generate sixteen consistent views of the object in an image with SyncDreamer and import
    them as cameras with image planes"""

    bl_idname = "glimpse3d.generate_views"
    bl_label = "Generate Views from Image (SyncDreamer)"
    bl_options = {"REGISTER"}

    __annotations__ = {
        "filepath": StringProperty(
            name="Image File", description="The input image (PNG with transparency works best)",
            subtype="FILE_PATH", options={"SKIP_SAVE"}),
        "image_name": StringProperty(
            name="Blender Image", description="Use this image datablock instead of a file",
            options={"SKIP_SAVE"}),
        "filter_glob": StringProperty(default=IMAGE_FILTER_GLOB, options={"HIDDEN", "SKIP_SAVE"}),
        **generation_options(skip_save=True),
        **import_options(skip_save=True),
    }

    @classmethod
    def poll(cls, context):
        if not runtime.session.state.can_generate:
            cls.poll_message_set("A generation is running; wait for it or press Cancel.")
            return False
        return True

    def invoke(self, context, event):
        # From the panel, a menu or F3: the panel's settings fill what the caller did not set.
        settings = getattr(context.scene, "glimpse3d", None)
        if settings is not None:
            for name in GENERATION_OPTION_NAMES + IMPORT_OPTION_NAMES:
                if not self.properties.is_property_set(name):
                    setattr(self, name, getattr(settings, name))
            if not (self.filepath or self.image_name):
                if settings.input_source == "IMAGE" and settings.image is not None:
                    self.image_name = settings.image.name
                elif settings.input_source == "FILE" and settings.filepath:
                    self.filepath = settings.filepath
        if not (self.filepath or self.image_name):
            context.window_manager.fileselect_add(self)  # nothing chosen yet: ask for a file
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context):
        if bpy.app.background:
            return self._run_blocking(context)
        try:
            settings = server_settings(context)
            self._pick_seed(context)
            request, set_name = generate.job_request(self._image() or bpy.path.abspath(self.filepath), **self._job_options())
            options = ImportOptions.pick(self)
        except ValueError as exc:
            return _fail(self, str(exc))
        try:
            runtime.session.submit(request, settings, tag=ImportPlan(options, set_name))
        except (ServerStartError, ServerError, RuntimeError) as exc:
            return _fail(self, str(exc))
        runtime.redraw()
        self.report({"INFO"}, f"Generating views (seed {self.seed}); progress is in the Glimpse3D sidebar tab.")
        return {"FINISHED"}

    def _image(self):
        if not self.image_name:
            return None
        image = bpy.data.images.get(self.image_name)
        if image is None:
            raise ValueError(f"There is no image named '{self.image_name}' in this file; choose "
                             "another image in the Glimpse3D panel.")
        return image

    def _pick_seed(self, context) -> None:
        if self.random_seed:
            self.seed = new_seed()
            settings = getattr(context.scene, "glimpse3d", None)
            if settings is not None:
                settings.seed = self.seed  # the panel shows the seed that was used

    def _job_options(self) -> dict:
        return {name: getattr(self, name) for name in GENERATION_OPTION_NAMES if name != "random_seed"}

    def _run_blocking(self, context) -> set:
        """Background mode: no timers, so the API follows the job here and imports when done."""
        try:
            image = self._image() or bpy.path.abspath(self.filepath)
        except ValueError as exc:
            return _fail(self, str(exc))
        self._pick_seed(context)
        runtime.say(f"Glimpse3D: generating views of {Path(getattr(image, 'name', image)).name} "
                    f"(seed {self.seed}, {self.steps} steps)")
        last_line = [""]

        def show(job):
            line = progress_text(job)
            if line != last_line[0]:
                runtime.say(f"Glimpse3D: {line}")
                last_line[0] = line

        try:
            options = vars(ImportOptions.pick(self))
            result = generate.generate_views(image, on_progress=show, context=context, **self._job_options(), **options)
        except ValueError as exc:
            return _fail(self, str(exc))
        except Glimpse3DError as exc:
            return _fail(self, str(exc))
        for folder in result.folders:
            runtime.say(f"Glimpse3D: wrote {folder}")
        if result.collections:
            runtime.say("Glimpse3D: imported " + ", ".join(c.name for c in result.collections))
        self.report({"INFO"}, f"Generated {len(result.folders)} view set(s).")
        return {"FINISHED"}


class GLIMPSE3D_OT_preview_input(bpy.types.Operator):
    """Show the 256x256 image the model will be given for the panel's image, crop size and
    background: the server runs the same preprocessing as a generation (no model needed)"""

    bl_idname = "glimpse3d.preview_input"
    bl_label = "Preview Model Input"

    def execute(self, context):
        settings = context.scene.glimpse3d
        try:
            image = settings.image if settings.input_source == "IMAGE" else None
            if settings.input_source == "IMAGE" and image is None:
                raise ValueError("No input image chosen: pick an image in the Glimpse3D panel.")
            image_bytes, _ = read_image(input_file(image, settings.filepath))
            params = {"crop_size": settings.crop_size, "background": settings.background.lower()}
        except ValueError as exc:
            return _fail(self, str(exc))
        session = runtime.session
        try:
            if session.client is None:
                if not bpy.app.background:
                    return _fail(self, "Start the server first (Server > Start): the preview is made by "
                                       "the server's own preprocessing.")
                session.start_server(server_settings(context))
                session.wait_until_ready()
            # A short request: the crop is quick; background removal of a photo takes a moment.
            png = session.client.preview_input(image_bytes, params)
        except (ServerStartError, ServerError, RuntimeError) as exc:
            return _fail(self, getattr(exc, "message", None) or str(exc))
        target = preview.save_model_input_preview(png, user_folder("previews"), preview.input_key(settings))
        runtime.redraw()
        self.report({"INFO"}, f"The model will see {target} (crop {params['crop_size']}, "
                              f"background {params['background']}).")
        return {"FINISHED"}


class GLIMPSE3D_OT_cancel(bpy.types.Operator):
    """Cancel the running generation (the server stops after the current step)"""

    bl_idname = "glimpse3d.cancel"
    bl_label = "Cancel Generation"

    @classmethod
    def poll(cls, context):
        return runtime.session.state.can_cancel

    def execute(self, context):
        generate.cancel()  # in background mode it waits until the server has stopped the job
        runtime.redraw()
        return {"FINISHED"}


class GLIMPSE3D_OT_start_server(bpy.types.Operator):
    """Start the local inference server (or connect to the remote one set in the preferences)"""

    bl_idname = "glimpse3d.start_server"
    bl_label = "Start Server"

    def execute(self, context):
        session = runtime.session
        try:
            session.start_server(server_settings(context))
            if bpy.app.background:
                session.wait_until_ready()
                runtime.say(f"Glimpse3D: server ready at {session.client.base_url}")
        except (ServerStartError, ValueError) as exc:
            return _fail(self, str(exc))
        runtime.redraw()
        return {"FINISHED"}


class GLIMPSE3D_OT_stop_server(bpy.types.Operator):
    """Stop the local inference server (a remote server is only disconnected) and cancel its job"""

    bl_idname = "glimpse3d.stop_server"
    bl_label = "Stop Server"

    def execute(self, context):
        runtime.session.stop_server()
        runtime.redraw()
        return {"FINISHED"}


class GLIMPSE3D_OT_unload_model(bpy.types.Operator):
    """Free the model's GPU memory; the next generation loads it again"""

    bl_idname = "glimpse3d.unload_model"
    bl_label = "Unload Model"

    def execute(self, context):
        try:
            runtime.session.unload_model(wait=bpy.app.background)
        except ServerError as exc:
            return _fail(self, exc.message)
        return {"FINISHED"}


class GLIMPSE3D_OT_check_setup(bpy.types.Operator):
    """Check the server Python, its packages, the GPU and the checkpoint, and say what is missing"""

    bl_idname = "glimpse3d.check_setup"
    bl_label = "Check Setup"

    def execute(self, context):
        session = runtime.session
        try:
            settings = server_settings(context)
        except ValueError as exc:
            return _fail(self, str(exc))
        if not bpy.app.background:
            session.check_setup(settings)  # the report appears in the preferences when ready
            return {"FINISHED"}
        items = session.check_setup(settings, wait=True)
        runtime.say(format_report(items))
        if all_ok(items):
            self.report({"INFO"}, "Setup OK: the server has everything it needs.")
        else:
            self.report({"WARNING"}, "Setup incomplete; the report above says what to fix.")
        return {"FINISHED"}


class GLIMPSE3D_OT_new_seed(bpy.types.Operator):
    """Pick a new random seed for the next generation"""

    bl_idname = "glimpse3d.new_seed"
    bl_label = "New Seed"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        context.scene.glimpse3d.seed = new_seed()
        return {"FINISHED"}


classes = (
    GLIMPSE3D_OT_generate_views,
    GLIMPSE3D_OT_preview_input,
    GLIMPSE3D_OT_cancel,
    GLIMPSE3D_OT_start_server,
    GLIMPSE3D_OT_stop_server,
    GLIMPSE3D_OT_unload_model,
    GLIMPSE3D_OT_check_setup,
    GLIMPSE3D_OT_new_seed,
)
