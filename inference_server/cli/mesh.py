"""`python -m inference_server mesh FOLDER -o OUT.ply`: the coloured proxy mesh of a view set."""
import sys
import time
from pathlib import Path

from .. import protocol
from ..errors import InputError
from ..proxy_mesh import DEFAULT_RESOLUTION, RESOLUTIONS, write_ply
from ..view_set.mesh import mesh_from_folder


def add_parser(commands) -> None:
    """The `mesh` subcommand on the command line's subparsers."""
    mesh = commands.add_parser(
        "mesh", help="build a coloured proxy mesh (visual hull) of a view set as PLY",
        description="Build the coloured visual hull of the object in a view set: a set folder (cameras.json), a "
        "folder of only view_00.png ... view_15.png, or a 4096x256 strip PNG (the model's fixed cameras). "
        "Writes a binary PLY with per-vertex colours and an 'unseen' flag.")
    mesh.add_argument("folder", type=Path, metavar="FOLDER", help="the view set (folder or strip PNG)")
    mesh.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.ply", help="the PLY file to write")
    mesh.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION,
                      help=f"grid cells along the object's longest side, {RESOLUTIONS[0]}..{RESOLUTIONS[1]} "
                           f"(default {DEFAULT_RESOLUTION}; 256 for finer detail)")
    mesh.add_argument("--keep-all-views", action="store_true",
                      help="use every view even when one disagrees with the others")


def run(args) -> int:
    started = time.perf_counter()
    mesh = mesh_from_folder(args.folder, args.resolution, reject_views=not args.keep_all_views)
    if args.output.suffix.lower() != ".ply":
        raise InputError(f"the output must be a .ply file, got {args.output}", code=protocol.ErrorCode.BAD_PARAMETER)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_ply(args.output, mesh.vertices, mesh.faces, mesh.colours, mesh.unseen, mesh.normals,
              comment=f"Glimpse3D proxy mesh of {args.folder.name}, resolution {mesh.resolution}")
    if mesh.rejected_views:
        print(f"note: left out view(s) {', '.join(map(str, mesh.rejected_views))}: their silhouettes disagree "
              "with the other views", file=sys.stderr)
    print(f"{args.output}: {len(mesh.vertices)} vertices, {len(mesh.faces)} triangles, "
          f"{int(mesh.unseen.sum())} unseen vertices, {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(args.output, flush=True)
    return 0
