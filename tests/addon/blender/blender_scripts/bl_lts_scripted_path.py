"""Run in a fresh Python with bpy, any supported Blender (the LTS compatibility test runs it with
bpy 4.2 and 4.5): the scripted path of a studio script, end to end, against the REAL server the
add-on starts (GLIMPSE_SERVER_PYTHON and GLIMPSE_SERVER_EXTRA_ARGS=--random-weights come from the
environment). Install and enable the zip, generate one set (1 step) through `glimpse3d_api`,
import a views folder with its proxy mesh, run the batch queue on one image, save, reopen the
.blend, then disable the extension. Prints 'RESULT {json}'.

usage: python bl_lts_scripted_path.py EXTENSION_ZIP IMAGE_PNG VIEWS_FOLDER PHOTOS_FOLDER WORK_FOLDER
"""
import json
import os
import sys
from pathlib import Path

import bpy
import addon_utils  # importable only after bpy

ZIP, IMAGE, VIEWS, PHOTOS, WORK = sys.argv[1:6]
MODULE = "bl_ext.user_default.glimpse_syncdreamer"
result = {"blender": bpy.app.version_string}


def describe(collection_name: str) -> dict:
    """What a set's collection holds, counted by kind, and whether its images' files exist."""
    collection = bpy.data.collections.get(collection_name)
    if collection is None:
        return {}
    objects = list(collection.all_objects)
    images = {slot.material.node_tree.nodes["Image Texture"].image for obj in objects if obj.type == "MESH"
              for slot in obj.material_slots if slot.material and "Image Texture" in slot.material.node_tree.nodes}
    return {"cameras": sum(o.type == "CAMERA" for o in objects),
            "planes": sum(o.type == "MESH" and not o.get("glimpse3d_proxy_mesh") for o in objects),
            "proxy_meshes": [len(o.data.vertices) for o in objects if o.get("glimpse3d_proxy_mesh")],
            "images": len(images),
            "images_on_disk": all(os.path.isfile(bpy.path.abspath(image.filepath)) for image in images)}


result["install"] = list(bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default",
                                                                    enable_on_install=True))
import glimpse3d_api as g  # noqa: E402  (exists once the extension is enabled)

blend = Path(WORK) / "shot.blend"
bpy.ops.wm.save_as_mainfile(filepath=str(blend))  # the outputs then go beside it

# -- generate: one step with the random-weight model, imported as a set --------------------------
made = g.generate_views(IMAGE, steps=1, seed=3, background="keep", name="generated", on_progress=g.print_progress)
result["generated"] = {"folders": made.folders, "collections": [c.name for c in made.collections],
                       "views_in_cameras_json": len(made.cameras[0]["views"]), "seed": made.seed,
                       "files": sorted(os.listdir(made.folders[0]))}

# -- import a views folder and build its proxy mesh ------------------------------------------------
result["import"] = list(bpy.ops.glimpse3d.import_views(directory=VIEWS, build_proxy_mesh=True))

# -- the batch queue: background mode works through it before queue_start returns --------------
settings = bpy.context.scene.glimpse3d
settings.steps, settings.background = 1, "KEEP"
result["queue_add"] = list(bpy.ops.glimpse3d.queue_add(directory=PHOTOS))
result["queue_start"] = list(bpy.ops.glimpse3d.queue_start())
queue = sys.modules[MODULE + ".blender.runtime"].queue
result["queue_items"] = [[item.name, item.state, list(item.sets)] for item in queue.items]

# -- save and reopen: what the file holds ----------------------------------------------------------
names = ["generated", Path(VIEWS).name, "teapot"]
result["before_save"] = {name: describe(name) for name in names}
result["save"] = list(bpy.ops.wm.save_mainfile())
result["reopen"] = list(bpy.ops.wm.open_mainfile(filepath=str(blend)))
result["reopened"] = {name: describe(name) for name in names}
result["relative_images"] = sorted({image.filepath.split("/")[2] for image in bpy.data.images
                                    if image.filepath.startswith("//")})

# -- disable: the server child stops and nothing of ours stays registered -------------------------
session = sys.modules[MODULE + ".blender.runtime"].session
pid = session.process.pid if session.process else None
result["server_running_before_disable"] = pid is not None and session.process.returncode is None
addon_utils.disable(MODULE, default_set=True)
try:
    os.kill(pid, 0)
    result["server_alive_after_disable"] = True
except (ProcessLookupError, TypeError):
    result["server_alive_after_disable"] = False
result["types_after_disable"] = [name for name in dir(bpy.types) if name.startswith("GLIMPSE3D")]
result["api_after_disable"] = "glimpse3d_api" in sys.modules
print("RESULT " + json.dumps(result), flush=True)
