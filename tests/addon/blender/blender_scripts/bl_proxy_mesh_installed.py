"""Run in a fresh Python with bpy (no repository on sys.path): install the zip, enable it, import a
views-only folder with the "Build Proxy Mesh" option and build again with the operator, so the
bundled proxy_mesh package is reached through the add-on's door, core/bundled.py. Prints 'RESULT {json}'.

usage: python bl_proxy_mesh_installed.py EXTENSION_ZIP VIEWS_FOLDER
"""
import json
import sys

import bpy

ZIP, VIEWS = sys.argv[1], sys.argv[2]
MODULE = "bl_ext.user_default.glimpse_syncdreamer"
result = {"install": list(bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default",
                                                                     enable_on_install=True))}
result["import"] = list(bpy.ops.glimpse3d.import_views(directory=VIEWS, build_proxy_mesh=True))
meshes = [obj for obj in bpy.data.objects if obj.get("glimpse3d_proxy_mesh")]
result["meshes"] = [(obj.name, len(obj.data.vertices), obj.parent.name, obj.users_collection[0].name) for obj in meshes]
result["again"] = list(bpy.ops.glimpse3d.build_proxy_mesh(resolution=48))
result["door_package"] = sys.modules[MODULE + ".core.bundled"].proxy_mesh.__name__
print("RESULT " + json.dumps(result), flush=True)
