"""`python -m inference_server batch INPUTS... -o OUT`: the command's flags and what it runs.

The generation flags are those of `generate` (options.add_generation_options) and are every image's
defaults; see generation/batch.py for inputs, the manifest and --resume, and cluster/ for --ray.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ..cluster.options import add_ray_options, ray_requested
from .options import add_generation_options, add_model_options, given_params, service_options

EXIT_SOME_FAILED = 1


def add_parser(commands) -> None:
    batch = commands.add_parser(
        "batch", help="generate the view sets of many images (files, folders, CSV), on this machine or a Ray cluster",
        description="Generate one view set per image into OUT/<name>/ and record each image in OUT/manifest.jsonl. "
                    "INPUTS are images, folders of images, or CSV files with a 'file' column and per-image "
                    "'elevation', 'crop_size', 'seed' (or any generation parameter). A failing image is recorded "
                    "and the rest go on; the exit status is 1 while any image of the run has failed.")
    batch.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="image, folder or CSV file")
    batch.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="the run's folder")
    batch.add_argument("--resume", action="store_true",
                       help="go on with the run in OUT: skip images whose sets are complete, retry the others")
    batch.add_argument("--quiet", action="store_true", help="no progress bar")
    add_generation_options(batch)
    add_model_options(batch)
    add_ray_options(batch, serve=False)


def run(args) -> int:
    from ..generation.batch import check_run_folder, collect_items, local_executor, run_batch

    # bad inputs and an earlier run without --resume are refused before any model loads
    if args.random_weights:
        print("WARNING: --random-weights: every view set will be noise (for trying the pipeline)", file=sys.stderr)
    check_run_folder(args.output, args.resume)
    items = collect_items(args.inputs, args.output, given_params(args))
    if ray_requested(args):
        from ..cluster.run_batch import run_batch_on_ray

        summary = run_batch_on_ray(args, items, service_options(args))
    else:
        from ..generation.pipeline import Pipeline
        from ..generation.service import SyncDreamerService

        pipeline = Pipeline(SyncDreamerService(**service_options(args)))
        summary = run_batch(items, args.output, local_executor(pipeline, resume=args.resume), resume=args.resume,
                            show_progress=not args.quiet)
    print(f"batch: {summary.done} done, {summary.failed} failed, {summary.skipped} skipped (complete, or failed on "
          f"an input unchanged since); "
          f"manifest: {summary.manifest}", file=sys.stderr, flush=True)
    return EXIT_SOME_FAILED if summary.failed_in_manifest else 0
