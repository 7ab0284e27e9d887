"""Run in a fresh Python with bpy: install the zip through Blender's extension install, enable it,
look at what it registered, draw its panels and preferences with a layout that checks every call
against Blender's UILayout API, try the operators' error paths in background mode, disable it,
and look again. Prints 'RESULT {json}' with the observations (the test asserts on them).

usage: python bl_install_cycle.py EXTENSION_ZIP IMAGE_PNG
"""
import json
import os
import sys
import types

import bpy
import addon_utils  # importable only after bpy

ZIP, IMAGE = sys.argv[1], sys.argv[2]
MODULE = "bl_ext.user_default.glimpse_syncdreamer"
result = {}


def ours():
    """Everything of the extension that Blender knows about right now."""
    return {
        "operators": sorted(name for name in dir(bpy.ops.glimpse3d)),
        "types": sorted(name for name in dir(bpy.types) if name.startswith("GLIMPSE3D")),
        "scene_settings": hasattr(bpy.types.Scene, "glimpse3d"),
        "add_image_menu": [f.__name__ for f in bpy.types.VIEW3D_MT_image_add._dyn_ui_initialize()
                           if f.__module__.startswith(MODULE)],
        "import_menu": [f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
                        if f.__module__.startswith(MODULE)],
        "timers": [name for name in ("tick",)
                   if MODULE + ".blender.timer" in sys.modules
                   and bpy.app.timers.is_registered(getattr(sys.modules[MODULE + ".blender.timer"], name))],
    }


class CheckedLayout:
    """Stands in for UILayout while drawing: every function and keyword must exist in Blender's
    UILayout API, every property drawn must exist on its data, every operator must exist."""

    FUNCTIONS = bpy.types.UILayout.bl_rna.functions
    PROPERTIES = bpy.types.UILayout.bl_rna.properties
    LAYOUTS = {"row", "column", "box", "split", "column_flow", "grid_flow"}

    def __init__(self, calls):
        object.__setattr__(self, "calls", calls)

    def __setattr__(self, name, value):
        assert name in self.PROPERTIES, f"UILayout has no property {name!r}"

    def __getattr__(self, name):
        function = self.FUNCTIONS.get(name)
        assert function is not None, f"UILayout has no function {name!r}"
        params = [p.identifier for p in function.parameters if not p.is_output]

        def call(*args, **kwargs):
            assert len(args) <= len(params), f"{name}: too many positional arguments {args}"
            unknown = set(kwargs) - set(params)
            assert not unknown, f"{name}: unknown keywords {unknown}"
            bound = dict(zip(params, args), **kwargs)
            if name in ("prop", "template_ID"):
                data, prop = bound["data"], bound["property"]
                assert data.bl_rna.properties.get(prop) is not None, f"{data} has no property {prop!r}"
            if name == "operator":
                category, _, op_name = bound["operator"].partition(".")
                assert hasattr(getattr(bpy.ops, category), op_name), f"no operator {bound['operator']}"
            self.calls.append((name, bound.get("text", bound.get("property", ""))))
            if name in self.LAYOUTS:
                return CheckedLayout(self.calls)
            if name == "operator":
                return types.SimpleNamespace()
            return None

        return call


def draw(cls_or_prefs, self_obj=None):
    calls = []
    context = types.SimpleNamespace(scene=bpy.context.scene, preferences=bpy.context.preferences,
                                    region=types.SimpleNamespace(width=320))
    target = self_obj if self_obj is not None else types.SimpleNamespace()
    if self_obj is None:
        target.layout = CheckedLayout(calls)
        cls_or_prefs.draw(target, context)
    else:
        fake = types.SimpleNamespace(**{name: getattr(self_obj, name) for name in self_obj.bl_rna.properties.keys()
                                        if name != "rna_type"})
        fake.bl_rna = self_obj.bl_rna
        fake.layout = CheckedLayout(calls)
        type(self_obj).draw(fake, context)
    return calls


def error_of(call):
    try:
        call()
    except RuntimeError as exc:
        return str(exc)
    return None


os.environ.pop("GLIMPSE_SERVER_PYTHON", None)  # this script tests the "not set" message
result["install"] = list(bpy.ops.extensions.package_install_files(
    filepath=ZIP, repo="user_default", enable_on_install=True))
result["enabled"] = MODULE in bpy.context.preferences.addons
result["registered"] = ours()

runtime = sys.modules[MODULE + ".blender.runtime"]
panel = sys.modules[MODULE + ".blender.panel"]
settings_module = sys.modules[MODULE + ".blender.settings"]
prefs = bpy.context.preferences.addons[MODULE].preferences
result["output_folder"] = settings_module.output_folder(prefs)

# The panels and the preferences draw in each server state without a wrong API call.
state = runtime.session.state
settings = bpy.context.scene.glimpse3d
settings.filepath = IMAGE
drawn = {}
for label, setup in (
        ("stopped", lambda: None),
        ("busy", lambda: (state.server_starting(), state.server_ready(), state.job_started(),
                          state.job_progress({"state": "sampling", "step": 3, "total_steps": 50, "eta_s": 12,
                                              "progress": 0.1}))),
        ("error", lambda: state.server_failed("The server stopped before it was ready (exit code 1).")),
):
    setup()
    calls = []
    for cls in panel.classes:
        calls += draw(cls)
    drawn[label] = calls
settings.input_source = "IMAGE"
settings.image = bpy.data.images.load(IMAGE)
drawn["image_input"] = draw(panel.GLIMPSE3D_PT_main)
settings.batch_views = 4
drawn["batch_views_4"] = draw(panel.GLIMPSE3D_PT_model_settings)
settings.batch_views = 0
queue_ops = sys.modules[MODULE + ".blender.queue_ops"]
drawn["queue_empty"] = draw(queue_ops.GLIMPSE3D_PT_queue)
runtime.queue.add(["/photos/a.png", "/photos/b.png", "/photos/c.png"])
runtime.queue.start()
first, second = runtime.queue.next_item(), None
runtime.queue.finish(first.id, "done", "a", ["a"])
second = runtime.queue.next_item()
runtime.queue.finish(second.id, "failed", "The input image b.png is damaged.")
drawn["queue"] = draw(queue_ops.GLIMPSE3D_PT_queue)
runtime.queue.cancel_all()
runtime.queue.clear()
drawn["prefs"] = draw(None, prefs)
prefs.server_mode = "REMOTE"
drawn["prefs_remote"] = draw(None, prefs)
prefs.server_mode = "LOCAL"
state.server_stopped()
result["drawn"] = {key: [text for _, text in calls] for key, calls in drawn.items()}

# The preferences reach the local server's command line.
server_settings = sys.modules[MODULE + ".core.server_settings"]
result["low_memory_argv"] = {}
for low_memory in (False, True):
    prefs.low_memory = low_memory
    settings_now = settings_module.server_settings()
    result["low_memory_argv"][str(low_memory)] = [settings_now.low_memory,
                                                  "--low-memory" in server_settings.serve_argv(settings_now)]
prefs.low_memory = False
result["batch_views_default"] = bpy.context.scene.glimpse3d.bl_rna.properties["batch_views"].default

# An image datablock is sent as its own file when it has one, else as a PNG copy.
input_image = sys.modules[MODULE + ".blender.input_image"]
result["datablock_file"] = str(input_image.image_file_path(settings.image, settings_module.user_folder("inputs")))
generated = bpy.data.images.new("made in blender", 8, 8, alpha=True)
copy = input_image.image_file_path(generated, settings_module.user_folder("inputs"))
result["generated_copy"] = {"name": copy.name, "png": copy.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n",
                            "datablock_path_kept": generated.filepath == "", "format": generated.file_format}

# Errors in background mode are RuntimeErrors that say what is wrong and what to do.
result["errors"] = {
    "missing_file": error_of(lambda: bpy.ops.glimpse3d.generate_views(filepath="/no/such/image.png")),
    "missing_image": error_of(lambda: bpy.ops.glimpse3d.generate_views(image_name="nope")),
    "no_python": error_of(lambda: bpy.ops.glimpse3d.generate_views(filepath=IMAGE, steps=1)),
    "bad_crop": error_of(lambda: bpy.ops.glimpse3d.generate_views(filepath=IMAGE, crop_size=10)),
    "unload_stopped": error_of(lambda: bpy.ops.glimpse3d.unload_model()),
}
result["check_setup"] = list(bpy.ops.glimpse3d.check_setup())
result["setup_report"] = [(i.status, i.label) for i in runtime.session.setup_report]

result["api_while_enabled"] = sys.modules["glimpse3d_api"].__name__
addon_utils.disable(MODULE, default_set=True)
result["after_disable"] = ours()
result["api_after_disable"] = "glimpse3d_api" in sys.modules
# Enabling again works (a second register in the same Blender session).
addon_utils.enable(MODULE, default_set=True)
result["api_reenabled"] = sys.modules["glimpse3d_api"] is sys.modules[MODULE + ".api"]
result["reenabled_ops"] = sorted(dir(bpy.ops.glimpse3d))
result["reenabled_types"] = ours()["types"]
addon_utils.disable(MODULE, default_set=True)
result["after_second_disable"] = ours()
print("RESULT " + json.dumps(result))
