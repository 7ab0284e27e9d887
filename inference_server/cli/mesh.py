"""`python -m inference_server mesh FOLDER -o OUT.ply|OUT.glb`: the coloured proxy mesh or the light
textured asset of a view set."""
import sys
import time
from pathlib import Path

from .. import protocol
from ..errors import InputError
from ..generation.masks import SILHOUETTE_METHODS, choose_masks
from ..proxy_mesh import DEFAULT_RESOLUTION, RESOLUTIONS, MeshError
from ..proxy_mesh.export import DEFAULT_FACES, DEFAULT_TEXTURE_SIZE, write_mesh_file
from ..proxy_mesh.silhouettes import BACKGROUND_TOLERANCE
from ..view_set.reading import read_views


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
