"""Run in a fresh Python with bpy: install and enable the zip, start the local server through
the extension (GLIMPSE_SERVER_PYTHON and --random-weights from the environment), print its pid
as 'SERVER_PID <pid>', then wait to be killed (the test kills this process, as a crash would).

usage: python bl_start_server_and_wait.py EXTENSION_ZIP
"""
import sys
import time

import bpy

bpy.ops.extensions.package_install_files(filepath=sys.argv[1], repo="user_default", enable_on_install=True)
import glimpse3d_api  # noqa: E402

glimpse3d_api.start_server()
runtime = sys.modules[glimpse3d_api.__name__.rpartition(".")[0] + ".blender.runtime"]
print(f"SERVER_PID {runtime.session.process.pid}", flush=True)
while True:
    time.sleep(1)
