"""Run in a fresh Python with bpy: install and enable the zip, then generate views synchronously
(background mode) with the REAL inference server that the add-on starts as a child process
(GLIMPSE_SERVER_PYTHON and GLIMPSE_SERVER_EXTRA_ARGS come from the environment: the test passes
the project's Python and --random-weights). Describes the imported set, then disables the
add-on and checks that the child server is gone. Prints 'RESULT {json}'.

usage: python bl_generate_real_server.py EXTENSION_ZIP IMAGE_PNG
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

bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
runtime = sys.modules[MODULE + ".blender.runtime"]
timer = sys.modules[MODULE + ".blender.timer"]
scene = bpy.context.scene
before = set(bpy.data.collections)

# Views per Batch is left at its default, automatic: the server picks.
result["generate"] = list(bpy.ops.glimpse3d.generate_views(
    filepath=IMAGE, elevation=30.0, crop_size=200, steps=2, seed=7, samples=1, background="KEEP"))

session = runtime.session
result["server_state"] = session.state.server
result["folders"] = list(session.last_folders)
folder = session.last_folders[0]
result["files"] = sorted(os.listdir(folder))
with open(os.path.join(folder, "cameras.json"), encoding="utf-8") as fh:
    cameras = json.load(fh)
result["cameras_json"] = {"random_weights": cameras["model"]["random_weights"], "steps": cameras["generation"]["steps"],
                          "seed": cameras["generation"]["seed"], "views": len(cameras["views"])}

(collection,) = [c for c in bpy.data.collections if c not in before]
objects = list(collection.all_objects)
result["set"] = {
    "name": collection.name,
    "in_scene": collection.name in scene.collection.children,
    "cameras": sum(o.type == "CAMERA" for o in objects),
    "planes": sum(o.type == "MESH" for o in objects),
    "empties": sum(o.type == "EMPTY" for o in objects),
    "markers_with_cameras": sum(1 for m in scene.timeline_markers if m.camera is not None and m.camera in objects),
}

# The model-input preview for the same image and settings is what the job's model saw.
settings = scene.glimpse3d
settings.input_source, settings.filepath, settings.crop_size, settings.background = "FILE", IMAGE, 200, "KEEP"
result["preview_op"] = list(bpy.ops.glimpse3d.preview_input())
preview = sys.modules[MODULE + ".blender.preview"]
preview_path, fresh = preview.model_input_preview(preview.input_key(settings))
shown, saw = bpy.data.images.load(preview_path), bpy.data.images.load(os.path.join(folder, "input.png"))
result["preview"] = {"fresh": fresh, "size": list(shown.size),
                     "same_as_input_png": list(shown.pixels) == list(saw.pixels)}
settings.crop_size = 180
result["preview"]["fresh_after_crop_change"] = preview.model_input_preview(preview.input_key(settings))[1]

# The UI path, where a timer drains the worker's events on the main thread, called as a plain
# function: a JOB_DONE event is imported by timer.tick(), a JOB_FAILED one shown as the error.
job_runner = sys.modules[MODULE + ".core.job_runner"]
import_options = sys.modules[MODULE + ".core.import_options"]
for serial, event_kind, fields in ((98, job_runner.JOB_DONE, {"folders": (folder,)}),
                                   (99, job_runner.JOB_FAILED, {"message": "Out of GPU memory: lower Views per Batch."})):
    session.runner = types.SimpleNamespace(serial=serial, cancel=lambda: None)  # the worker that sent it
    session.state.job_started()
    session.events.put(job_runner.Event(event_kind, serial=serial, tag=import_options.ImportPlan(import_options.ImportOptions()), **fields))
    interval = timer.tick()
    result.setdefault("ticks", []).append({"interval": interval, "busy": session.state.busy,
                                           "notice": session.state.notice, "error": session.state.error})
result["sets_after_ticks"] = sorted(c.name for c in bpy.data.collections if c not in before)

# Disabling the add-on stops the server child it started.
pid = session.process.pid
result["server_alive_before_disable"] = session.process.returncode is None
addon_utils.disable(MODULE, default_set=True)
try:
    os.kill(pid, 0)
    result["server_alive_after_disable"] = True
except ProcessLookupError:
    result["server_alive_after_disable"] = False
result["types_after_disable"] = [name for name in dir(bpy.types) if name.startswith("GLIMPSE3D")]
print("RESULT " + json.dumps(result))
