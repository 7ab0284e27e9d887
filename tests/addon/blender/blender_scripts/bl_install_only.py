"""Run in a fresh Python with bpy: install the zip into the user_default repository and exit,
leaving the extension installed but (the preferences not being saved) not enabled for the
next process, as a fresh `bpy` module finds it. Prints 'RESULT {json}'.

usage: python bl_install_only.py EXTENSION_ZIP
"""
import json
import sys

import bpy

result = {"install": list(bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default"))}
print("RESULT " + json.dumps(result))
