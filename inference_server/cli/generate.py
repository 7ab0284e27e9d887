"""`python -m inference_server generate INPUT -o OUTDIR`: the sixteen views of one image."""
import sys
from pathlib import Path

from .. import protocol
from ..generation.params import cli_flag, job_options, parse_params
from ..generation.progress import TerminalProgress
from .options import add_generation_options, add_model_options, given_params, make_service


def add_parser(commands) -> None:
    generate = commands.add_parser("generate", help="generate the sixteen views of one image",
                                   description="Generate the sixteen views of INPUT into OUTDIR "
                                   "(with --samples N > 1: OUTDIR/sample_0 .. sample_N-1).")
    generate.add_argument("input", type=Path, metavar="INPUT", help="the image (RGBA PNG works best)")
    generate.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR",
                          help="the output folder")
    add_generation_options(generate)
    generate.add_argument("--overwrite", action="store_true", help="replace an existing view set")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    add_job_options(generate)
    add_model_options(generate)


def add_job_options(parser) -> None:
    """--mesh, --mesh-resolution and --mesh-asset (protocol.JOB_OPTIONS)."""
    specs = protocol.JOB_OPTION_SPECS
    parser.add_argument("--mesh", action="store_true", default=None, help=f"{specs['mesh'].hint} (mesh.ply)")
    parser.add_argument("--mesh-resolution", type=int, default=None,
                        help=f"{specs['mesh_resolution'].hint} (default {specs['mesh_resolution'].default})")
    parser.add_argument("--mesh-asset", action="store_true", default=None, help=specs["mesh_asset"].hint)


def job_options_from_args(args) -> dict:
    given = {"mesh": args.mesh, "mesh_resolution": args.mesh_resolution, "mesh_asset": args.mesh_asset}
    return job_options({name: value for name, value in given.items() if value is not None}, spell=cli_flag)


def run(args) -> int:
    from ..generation.pipeline import GenerationRequest, Pipeline, check_request

    params = parse_params(given_params(args), spell=cli_flag)
    request = GenerationRequest(image=args.input, output=args.output, params=params, input_name=args.input.name,
                                overwrite=args.overwrite, options=job_options_from_args(args))
    # refuse a bad image or an occupied folder before loading the model
    check_request(request, overwrite_hint="pass --overwrite")
    service = make_service(args)
    progress = TerminalProgress(enabled=not args.quiet)
    try:
        folders = Pipeline(service).run(request, progress=progress)
    finally:
        progress.close()
    for note in params.warnings():
        print(f"note: {note}", file=sys.stderr)
    for folder in folders:
        print(folder, flush=True)
    return 0
