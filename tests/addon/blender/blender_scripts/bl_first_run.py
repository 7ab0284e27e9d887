"""Run in a fresh Python with bpy and an empty Blender user folder and data folder
($GLIMPSE_DATA_DIR): install and enable the zip, then press only the buttons that the sidebar's
first-run guide draws (Install Server for real from the package index, then Try With Random
Weights) and the panel's Generate Views. Then Install Server again (a repair), Download
Checkpoint from a host on 127.0.0.1, a cancelled install, and what the guide draws for a
running, a cancelled and a failed setup task.
Prints 'RESULT {json}'.

usage: python bl_first_run.py EXTENSION_ZIP IMAGE_PNG
"""
import hashlib
import json
import os
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import bpy

ZIP, IMAGE = sys.argv[1], sys.argv[2]
MODULE = "bl_ext.user_default.glimpse_syncdreamer"
result = {"pressed": []}


class RecordingLayout:
    """Stands in for a panel's layout: records the labels and the buttons drawn on it."""

    def __init__(self):
        self.items = []
        self.alert, self.enabled, self.scale_y = False, True, 1.0

    def box(self):
        return self

    row = column = box

    def label(self, text="", icon="NONE"):
        self.items.append(("label", text, icon))

    def operator(self, idname, text="", icon="NONE"):
        self.items.append(("operator", idname, text))
        return type("OperatorProperties", (), {})()

    def progress(self, factor=0.0, type="BAR", text=""):
        self.items.append(("progress", text, factor))

    def prop(self, *args, **kwargs):
        pass


def guide():
    layout = RecordingLayout()
    first_run.draw(layout, bpy.context)
    return layout.items


def buttons(items):
    return [(item[1], item[2]) for item in items if item[0] == "operator"]


bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
first_run = sys.modules[MODULE + ".blender.first_run"]
runtime = sys.modules[MODULE + ".blender.runtime"]
env_installer = sys.modules[MODULE + ".core.env_installer"]
user_data = sys.modules[MODULE + ".core.user_data"]
prefs = bpy.context.preferences.addons[MODULE].preferences
env_dir = user_data.server_env_dir()
log = user_data.logs_dir() / "install-server.log"

# -- the buttons alone: whatever the guide offers, Install first, Random Weights for the checkpoint
result["guide"] = []
for _ in range(4):
    offered = buttons(guide())
    result["guide"].append(offered)
    ids = [idname for idname, _text in offered]
    choice = next((i for i in ("glimpse3d.install_server", "glimpse3d.try_random_weights") if i in ids), None)
    if choice is None:
        break
    started = time.monotonic()
    outcome = getattr(bpy.ops.glimpse3d, choice.split(".")[1])()
    result["pressed"].append([choice, list(outcome), round(time.monotonic() - started, 1)])
result["cpu_labels"] = [item[1] for item in guide() if item[0] == "label" and item[2] == "TIME"]
result["python_pref"] = prefs.python_path
result["marker"] = env_installer.read_marker(env_dir)
result["setup_report"] = [[item.status, item.label] for item in runtime.session.setup_report or ()]

meshes_before = sum(o.type == "MESH" for o in bpy.data.objects)  # the startup scene's cube
# The panel's Generate Views (background Blender has no window to invoke from: the panel's
# settings are passed as the operator's options).
result["generate"] = list(bpy.ops.glimpse3d.generate_views(filepath=IMAGE, steps=2, seed=7, samples=1,
                                                           background="KEEP"))
session = runtime.session
result["server_python"] = session.settings.python
result["folders"] = list(session.last_folders)
folder = session.last_folders[0]
result["files"] = sorted(os.listdir(folder))
with open(os.path.join(folder, "cameras.json"), encoding="utf-8") as fh:
    result["random_weights"] = json.load(fh)["model"]["random_weights"]
result["planes"] = sum(o.type == "MESH" for o in bpy.data.objects) - meshes_before
bpy.ops.glimpse3d.stop_server()

# -- a second Install Server repairs the environment it made
python_mtime = os.stat(user_data.env_python(env_dir)).st_mtime_ns
log_before = log.read_text(encoding="utf-8")
started = time.monotonic()
result["repair"] = {"outcome": list(bpy.ops.glimpse3d.install_server()),
                    "seconds": round(time.monotonic() - started, 1),
                    "same_python": os.stat(user_data.env_python(env_dir)).st_mtime_ns == python_mtime,
                    "log": log.read_text(encoding="utf-8")[len(log_before):],
                    "marker": env_installer.read_marker(env_dir) is not None}

# -- Download Checkpoint through the operator, from a host on 127.0.0.1 (the file's sha256 as its ETag)
served = user_data.data_dir() / "served"
served.mkdir()
(served / "model.ckpt").write_bytes(b"not really a checkpoint" * 1000)
sha = hashlib.sha256((served / "model.ckpt").read_bytes()).hexdigest()
host = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: SimpleHTTPRequestHandler(*a, directory=str(served)))
threading.Thread(target=host.serve_forever, daemon=True).start()
result["download"] = list(bpy.ops.glimpse3d.download_checkpoint(
    url=f"http://127.0.0.1:{host.server_address[1]}/model.ckpt", sha256=sha))
host.shutdown()
result["checkpoint_pref"] = prefs.checkpoint_path
result["checkpoint_same"] = open(prefs.checkpoint_path, "rb").read() == (served / "model.ckpt").read_bytes()

# -- a cancelled install (here: as torch's step begins) leaves the environment unmarked
cancel = threading.Event()
try:
    env_installer.install_server(sys.modules[MODULE + ".core.bundle_paths"].server_root(), env_dir, log, cancel=cancel,
                                 on_progress=lambda p: cancel.set() if p.phase == env_installer.TORCH else None)
    result["cancel"] = "not cancelled"
except Exception as exc:
    result["cancel"] = type(exc).__name__
result["marker_after_cancel"] = env_installer.read_marker(env_dir)
result["guide_after_cancel"] = buttons(guide())
# -- what the guide draws while a setup task runs, after Cancel, and after a failure that the CPU build fixes
setup_ops = sys.modules[MODULE + ".blender.setup_ops"]
setup_task = sys.modules[MODULE + ".core.setup_task"]


def waiting(cancel, on_progress):
    on_progress(setup_task.Progress("Installing torch", "torch", 42.0, "1.25 of 2.50 GB"))
    cancel.wait(30)
    raise sys.modules[MODULE + ".core.streamed_process"].Cancelled()


def failing(cancel, on_progress):
    raise env_installer.InstallError("The package index for the CUDA build cannot be reached.", offer_cpu=True)


setup_ops.task.start(setup_task.INSTALL, waiting)
result["drawn_running"] = guide()
result["cancel_op"] = list(bpy.ops.glimpse3d.cancel_setup())
while setup_ops.task.running:
    time.sleep(0.05)
setup_ops.task.take_finished()
result["drawn_cancelled"] = guide()
setup_ops.task.start(setup_task.INSTALL, failing, wait=True)
result["drawn_failed"] = guide()

print("RESULT " + json.dumps(result, default=str))
