"""Run in a fresh Python with bpy: install and enable the zip, then use the sidebar's batch
queue against the REAL server (random weights). First in background mode (queue_start works
through the queue): three images, one broken. Then the interface's way, the timer's tick()
called as a plain function: a long job is cancelled with Cancel All. Prints 'RESULT {json}'.

usage: python bl_queue_real_server.py EXTENSION_ZIP PHOTOS_FOLDER
"""
import json
import sys
import time

import bpy

ZIP, PHOTOS = sys.argv[1], sys.argv[2]
MODULE = "bl_ext.user_default.glimpse_syncdreamer"
result = {}

bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
runtime = sys.modules[MODULE + ".blender.runtime"]
timer = sys.modules[MODULE + ".blender.timer"]
queue, session = runtime.queue, runtime.session
settings = bpy.context.scene.glimpse3d
settings.steps, settings.background = 1, "KEEP"

# -- background mode: queue_start generates and imports each image in turn ---------------------
result["add"] = list(bpy.ops.glimpse3d.queue_add(
    directory=PHOTOS, files=[{"name": "cat.png"}, {"name": "broken.png"}, {"name": "teapot.png"}]))
result["start"] = list(bpy.ops.glimpse3d.queue_start())
result["items"] = [[item.name, item.state, list(item.sets)] for item in queue.items]
result["broken_message"] = queue.items[1].message
result["collections"] = sorted(c.name for c in bpy.data.collections)
result["running_after"] = queue.running

# -- the interface's way: the timer sends each item; Cancel All stops the rest ----------------
bpy.ops.glimpse3d.queue_clear()
settings.steps = 300  # long enough to be cancelled while it samples
result["add_folder"] = list(bpy.ops.glimpse3d.queue_add(directory=PHOTOS))
result["queued"] = [item.name for item in queue.items]
queue.start()
deadline = time.monotonic() + 300
while not (session.state.job or {}).get("state") == "sampling":
    assert time.monotonic() < deadline, "the first queued job never started sampling"
    timer.tick()
    time.sleep(0.1)
result["while_running"] = [item.state for item in queue.items]
result["cancel_all"] = list(bpy.ops.glimpse3d.queue_cancel_all())
for _ in range(5):
    timer.tick()
result["after_cancel"] = [item.state for item in queue.items]
result["session_after"] = [session.state.busy, session.state.server, queue.running]
print("RESULT " + json.dumps(result))
