"""Run in a fresh Python with bpy: install and enable the extension zip, point it at a server
that already runs (Remote mode: URL and token), generate views synchronously (background mode)
and describe the imported set. Prints 'RESULT {json}'.

usage: python bl_remote_generate.py EXTENSION_ZIP IMAGE_PNG SERVER_URL TOKEN
"""
import json
import os
import sys

import bpy

ZIP, IMAGE, URL, TOKEN = sys.argv[1:5]
MODULE = "bl_ext.user_default.glimpse_syncdreamer"

bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
prefs = bpy.context.preferences.addons[MODULE].preferences
prefs.server_mode = "REMOTE"
prefs.server_url = URL
prefs.server_token = TOKEN

before = set(bpy.data.collections)
shot_camera = bpy.context.scene.camera
generate = bpy.ops.glimpse3d.generate_views(filepath=IMAGE, elevation=30.0, crop_size=200, steps=1, seed=7,
                                            samples=1, background="KEEP")
(collection,) = [c for c in bpy.data.collections if c not in before]
runtime = sys.modules[MODULE + ".blender.runtime"]
folder = runtime.session.last_folders[0]
print("RESULT " + json.dumps({
    "generate": list(generate),
    "cameras": sum(1 for o in collection.all_objects if o.type == "CAMERA"),
    "planes": sum(1 for o in collection.all_objects if o.type == "MESH"),
    "files": sorted(os.listdir(folder)),
    "scene_camera_unchanged": bpy.context.scene.camera == shot_camera,
}))
