"""`python -m inference_server mesh FOLDER -o OUT.ply`: the coloured proxy mesh of a view set,
and `mesh.ply` written into a set (the `mesh` job option).

Reads a set folder (cameras.json), a folder of only view_00.png ... view_15.png or a 4096x256
strip (both with the model's fixed cameras); the mesh itself is `proxy_mesh` (numpy only).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from . import cameras, protocol
from .errors import InputError
from .proxy_mesh import DEFAULT_RESOLUTION, RESOLUTIONS, MeshError, ProxyMesh, ViewCamera, build_proxy_mesh, write_ply
from .proxy_mesh.export import DEFAULT_FACES, DEFAULT_TEXTURE_SIZE, write_mesh_file
from .proxy_mesh.masks import SILHOUETTE_METHODS, choose_masks
from .proxy_mesh.silhouettes import BACKGROUND_TOLERANCE

log = logging.getLogger("glimpse")


def add_parser(commands) -> None:
    """The `mesh` subcommand on the command line's subparsers."""
    mesh = commands.add_parser(
        "mesh", help="build a coloured proxy mesh (visual hull) of a view set as PLY",
        description="Build the coloured visual hull of the object in a view set: a set folder (cameras.json), a "
        "folder of only view_00.png ... view_15.png, or a 4096x256 strip PNG (the model's fixed cameras). "
        "Writes a binary PLY with per-vertex colours and an 'unseen' flag.")
    mesh.add_argument("folder", type=Path, metavar="FOLDER", help="the view set (folder or strip PNG)")
    mesh.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.ply|OUT.glb",
                      help="the file to write: .ply, the coloured proxy mesh; .glb, a light textured asset")
    mesh.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION,
                      help=f"grid cells along the object's longest side, {RESOLUTIONS[0]}..{RESOLUTIONS[1]} "
                           f"(default {DEFAULT_RESOLUTION}; 256 for finer detail)")
    mesh.add_argument("--keep-all-views", action="store_true",
                      help="use every view even when one disagrees with the others")
    mesh.add_argument("--faces", type=int, default=DEFAULT_FACES,
                      help=f".glb: the asset's triangle budget (default {DEFAULT_FACES})")
    mesh.add_argument("--texture-size", type=int, default=DEFAULT_TEXTURE_SIZE,
                      help=f".glb: the texture's width and height in pixels (default {DEFAULT_TEXTURE_SIZE})")
    mesh.add_argument("--masks", type=Path, default=None, metavar="FOLDER",
                      help="object masks made elsewhere: mask_00.png ... mask_15.png (white = object)")
    mesh.add_argument("--silhouettes", choices=SILHOUETTE_METHODS, default="auto",
                      help="without --masks: rembg background removal (auto: where it and its model are "
                           "installed and the views have no transparency) or the white background")
    mesh.add_argument("--background-tolerance", type=float, default=BACKGROUND_TOLERANCE,
                      help="how far below the border's white (0..1) a pixel connected to the border may be "
                           f"and still count as background (default {BACKGROUND_TOLERANCE})")


def run(args) -> int:
    started = time.perf_counter()
    if args.output.suffix.lower() not in (".ply", ".glb"):
        raise InputError(f"the output must be a .ply (coloured proxy mesh) or .glb (textured asset) file, got "
                         f"{args.output}", code=protocol.ErrorCode.BAD_PARAMETER)
    images, view_cameras = read_views(args.folder)
    masks = choose_masks(images, args.silhouettes, args.masks)
    try:
        written = write_mesh_file(args.output, images, view_cameras, resolution=args.resolution, masks=masks,
                                  reject_views=not args.keep_all_views, tolerance=args.background_tolerance,
                                  faces=args.faces, texture_size=args.texture_size,
                                  comment=f"Glimpse3D proxy mesh of {args.folder.name}, resolution {args.resolution}")
    except MeshError as error:
        raise InputError(f"{args.folder}: {error}", code=protocol.ErrorCode.BAD_PARAMETER) from None
    if written.rejected_views:
        print(f"note: left out view(s) {', '.join(map(str, written.rejected_views))}: their silhouettes disagree "
              "with the other views", file=sys.stderr)
    print(f"{args.output}: {written.summary}, {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(args.output, flush=True)
    return 0


def read_views(source):
    """(images as uint8 arrays, ViewCameras) of a set folder, a views-only folder or a strip PNG."""
    from PIL import Image

    source = Path(source).expanduser()
    if not source.exists():
        raise InputError(f"{source} does not exist: give a view set folder or a 4096x256 strip PNG",
                         code=protocol.ErrorCode.BAD_PARAMETER)
    if source.is_file() and source.name not in (protocol.CAMERAS_FILE, *protocol.VIEW_FILES):
        with Image.open(source) as strip:
            if strip.size != (protocol.VIEW_COUNT * protocol.VIEW_SIZE, protocol.VIEW_SIZE):
                raise InputError(f"{source.name} is {strip.size[0]}x{strip.size[1]} pixels; a strip of sixteen views "
                                 f"is {protocol.VIEW_COUNT * protocol.VIEW_SIZE}x{protocol.VIEW_SIZE}",
                                 code=protocol.ErrorCode.BAD_PARAMETER)
            pixels = np.asarray(strip.convert("RGBA"))
        images = [pixels[:, i * protocol.VIEW_SIZE:(i + 1) * protocol.VIEW_SIZE] for i in range(protocol.VIEW_COUNT)]
        return images, fixed_cameras()
    folder = source if source.is_dir() else source.parent
    cameras_path = folder / protocol.CAMERAS_FILE
    if cameras_path.is_file():
        document = json.loads(cameras_path.read_text(encoding="utf-8"))
        width, height = document.get("image_size", [protocol.VIEW_SIZE, protocol.VIEW_SIZE])
        entries = sorted(document["views"], key=lambda entry: entry["index"])
        files = [folder / entry["file"] for entry in entries]
        view_cameras = [ViewCamera(np.asarray(entry["world_to_camera_opencv"], dtype=np.float64),
                                   np.asarray(entry["K"], dtype=np.float64), width, height) for entry in entries]
    else:
        files = [folder / name for name in protocol.VIEW_FILES]
        view_cameras = fixed_cameras()
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise InputError(f"{folder} is not a complete view set: {', '.join(missing)} missing. Give a set folder "
                         "(cameras.json), a folder of view_00.png ... view_15.png, or a strip PNG",
                         code=protocol.ErrorCode.BAD_PARAMETER)
    images = []
    for path in files:
        with Image.open(path) as image:
            images.append(np.asarray(image.convert("RGBA" if "A" in image.getbands() else "RGB")))
    return images, view_cameras


def fixed_cameras() -> list:
    """The model's sixteen target cameras."""
    w2c, _, K = cameras.target_cameras()
    return [ViewCamera(pose, K, cameras.IMAGE_SIZE, cameras.IMAGE_SIZE) for pose in w2c]


def mesh_from_folder(source, resolution: int = DEFAULT_RESOLUTION, reject_views: bool = True) -> ProxyMesh:
    images, view_cameras = read_views(source)
    try:
        return build_proxy_mesh(images, view_cameras, resolution=resolution, reject_views=reject_views,
                                masks=choose_masks(images))
    except MeshError as error:
        raise InputError(f"{source}: {error}", code=protocol.ErrorCode.BAD_PARAMETER) from None


def write_set_asset(folder) -> Path:
    """Write asset.glb (the textured asset at default settings) into the set `folder` and list it
    in its cameras.json: {"asset": {"file", "faces", "texture_size", "rejected_views"}}."""
    folder = Path(folder)
    images, view_cameras = read_views(folder)
    try:
        written = write_mesh_file(folder / protocol.ASSET_FILE, images, view_cameras, masks=choose_masks(images))
    except MeshError as error:
        raise InputError(f"{folder}: {error}", code=protocol.ErrorCode.BAD_PARAMETER) from None
    _list_mesh(folder, {"file": protocol.ASSET_FILE, "faces": written.faces, "texture_size": DEFAULT_TEXTURE_SIZE,
                        "rejected_views": list(written.rejected_views)}, key="asset")
    return written.path


def write_set_mesh(folder, resolution: int = DEFAULT_RESOLUTION) -> Path:
    """Write mesh.ply into the set `folder` and list it in its cameras.json (both replaced whole,
    never half-written): {"mesh": {"file", "resolution", "rejected_views", "unseen_property"}}."""
    folder = Path(folder)
    mesh = mesh_from_folder(folder, resolution)
    path = write_ply(folder / protocol.MESH_FILE, mesh.vertices, mesh.faces, mesh.colours, mesh.unseen,
                     mesh.normals, comment=f"Glimpse3D proxy mesh, resolution {mesh.resolution}")
    _list_mesh(folder, {"file": protocol.MESH_FILE, "resolution": mesh.resolution,
                        "rejected_views": list(mesh.rejected_views), "unseen_property": "unseen"})
    return path


def _list_mesh(folder: Path, entry: dict, key: str = "mesh") -> None:
    """cameras.json with its "mesh" (or "asset") entry, replaced whole (a temporary file, then a rename)."""
    cameras_path = folder / protocol.CAMERAS_FILE
    document = json.loads(cameras_path.read_text(encoding="utf-8"))
    document[key] = entry
    partial = cameras_path.with_name(f".{cameras_path.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(partial, cameras_path)


# ---- the `mesh` job option -------------------------------------------------------------------

def job_options(raw: dict, spell=None) -> dict:
    """The job options (protocol.JOB_OPTIONS) in `raw`, checked, with their defaults."""
    from .params import check_value, json_name

    return {spec.name: check_value(spec, raw[spec.name], spell or json_name) if spec.name in raw else spec.default
            for spec in protocol.JOB_OPTIONS}


def add_generate_options(parser) -> None:
    """--mesh and --mesh-resolution on `generate`."""
    specs = protocol.JOB_OPTION_SPECS
    parser.add_argument("--mesh", action="store_true", default=None, help=f"{specs['mesh'].hint} (mesh.ply)")
    parser.add_argument("--mesh-resolution", type=int, default=None,
                        help=f"{specs['mesh_resolution'].hint} (default {specs['mesh_resolution'].default})")
    parser.add_argument("--mesh-asset", action="store_true", default=None, help=specs["mesh_asset"].hint)


def job_options_from_args(args) -> dict:
    from .params import cli_flag

    given = {"mesh": args.mesh, "mesh_resolution": args.mesh_resolution, "mesh_asset": args.mesh_asset}
    return job_options({name: value for name, value in given.items() if value is not None}, spell=cli_flag)


def write_mesh_if_asked(folder, views, request) -> None:
    """A pipeline set writer: mesh.ply into the set when the job asked for it. Views in which no
    object can be told apart (random weights paint noise) give no mesh: cameras.json then says why
    ({"mesh": {"file": null, "error": ...}}) and the views are kept."""
    options = getattr(request, "options", None) or {}
    if options.get("mesh_asset"):
        try:
            write_set_asset(folder)
        except InputError as error:
            log.warning("no textured asset for %s: %s", Path(folder).name, error.message)
            _list_mesh(Path(folder), {"file": None, "error": error.message}, key="asset")
    if not options.get("mesh"):
        return
    resolution = options.get("mesh_resolution", DEFAULT_RESOLUTION)
    try:
        write_set_mesh(folder, resolution)
    except InputError as error:
        log.warning("no proxy mesh for %s: %s", Path(folder).name, error.message)
        _list_mesh(Path(folder), {"file": None, "resolution": resolution, "error": error.message})
