"""Run in a fresh Python with bpy: install and enable the zip, then use the Python API under its
stable name `glimpse3d_api` against the REAL server the add-on starts (GLIMPSE_SERVER_PYTHON and
GLIMPSE_SERVER_EXTRA_ARGS=--random-weights come from the environment). Checks return values and
error types, Ctrl+C (a KeyboardInterrupt raised in on_progress) and the cancel operator in
background mode, then saves the .blend, uninstalls the extension, moves the .blend with its
output folder two levels deeper and reopens it. Prints 'RESULT {json}'.

usage: python bl_api_real_server.py EXTENSION_ZIP IMAGE_PNG WORK_FOLDER
"""
import json
import os
import shutil
import sys
from pathlib import Path

import bpy

ZIP, IMAGE, WORK = sys.argv[1], sys.argv[2], Path(sys.argv[3])
result = {}

bpy.ops.extensions.package_install_files(filepath=ZIP, repo="user_default", enable_on_install=True)
import glimpse3d_api as g  # noqa: E402  (exists once the extension is enabled)

extension_dir = Path(g.__file__).parent
result["api_module"] = g.__name__
shot = WORK / "shot"
shot.mkdir(parents=True)
bpy.ops.wm.save_as_mainfile(filepath=str(shot / "shot.blend"))  # outputs then go beside it

# -- return values -------------------------------------------------------------------------------
made = g.generate_views(IMAGE, steps=1, seed=3, background="keep", name="猫 cat", on_progress=g.print_progress)
(folder,), (collection,), (cameras,) = made.folders, made.collections, made.cameras
result["generated"] = {
    "folder_parent": str(Path(folder).parent), "collection": collection.name, "seed": made.seed,
    "cameras_views": len(cameras["views"]), "cameras_seed": cameras["generation"]["seed"],
    "image_path": bpy.data.objects["猫 cat_view_00"].active_material.node_tree.nodes["Image Texture"].image.filepath,
    "inside_extension": str(extension_dir) in folder,
}
again = g.import_views(folder, shader="PRINCIPLED")  # the same folder: its set is replaced
result["reimported"] = [again.folders == [folder], again.collections[0].name, again.cameras[0] == cameras]

# -- error types ---------------------------------------------------------------------------------
broken = WORK / "broken.png"
broken.write_bytes(b"this is not a PNG")
errors = {}
for label, call in (
        ("missing_file", lambda: g.generate_views(str(WORK / "nope.png"), steps=1)),
        ("broken_image", lambda: g.generate_views(str(broken), steps=1, background="keep")),
        ("bad_option", lambda: g.generate_views(IMAGE, steps=1, shader="TOON")),
        ("not_a_set", lambda: g.import_views(str(WORK))),
):
    try:
        call()
        errors[label] = None
    except g.Glimpse3DError as exc:
        errors[label] = [type(exc).__name__, isinstance(exc, g.Glimpse3DError), str(exc)[:200]]
result["errors"] = errors

# -- Ctrl+C and Cancel in background mode --------------------------------------------------------
runtime = sys.modules[g.__name__.rpartition(".")[0] + ".blender.runtime"]
session = runtime.session


def interrupt(job):
    if job.get("state") == "sampling":
        raise KeyboardInterrupt


try:
    g.generate_views(IMAGE, steps=200, seed=4, background="keep", on_progress=interrupt)
    result["interrupt"] = "not raised"
except KeyboardInterrupt:
    job_id = session.last_end.job["id"] if session.last_end and session.last_end.job else None
    result["interrupt"] = {"busy": session.state.busy, "server": session.state.server,
                           "last_end": session.last_end.kind, "server_job_state":
                           session.client.get_job(job_id)["state"] if job_id else None}


def cancel_with_the_operator(job):
    if job.get("state") == "sampling" and session.state.can_cancel:
        result["cancel_op"] = list(bpy.ops.glimpse3d.cancel())


try:
    g.generate_views(IMAGE, steps=200, seed=5, background="keep", on_progress=cancel_with_the_operator)
    result["cancelled"] = "not raised"
except g.CancelledError as exc:
    result["cancelled"] = [type(exc).__name__, session.state.busy, session.state.server]
after = g.generate_views(IMAGE, steps=1, seed=6, background="keep", import_result=False)
result["usable_after"] = [len(after.folders), after.collections, after.cameras[0]["generation"]["seed"]]

# -- uninstall, move, reopen ---------------------------------------------------------------------
bpy.ops.wm.save_mainfile()
views = sorted(os.listdir(folder))
repo_index = [repo.module for repo in bpy.context.preferences.extensions.repos].index("user_default")
result["uninstall"] = list(bpy.ops.extensions.package_uninstall(repo_index=repo_index, pkg_id="glimpse_syncdreamer"))
result["extension_dir_gone"] = not extension_dir.exists()
result["views_kept"] = sorted(os.listdir(folder)) == views and len(views) >= 16
moved = WORK / "moved" / "two" / "deeper"
moved.parent.mkdir(parents=True)
shutil.move(str(shot), str(moved))
bpy.ops.wm.open_mainfile(filepath=str(moved / "shot.blend"))
images = [image for image in bpy.data.images if image.name.startswith("猫 cat_view_")]
result["reopened"] = {"images": len(images),
                      "all_found": all(os.path.isfile(bpy.path.abspath(image.filepath)) for image in images),
                      "all_load": all(image.has_data or image.size[0] == 256 for image in images),
                      "relative": all(image.filepath.startswith("//glimpse3d_views/") for image in images)}
print("RESULT " + json.dumps(result))
