"""`python -m inference_server download`: the SyncDreamer checkpoint, resumed and checked."""
from pathlib import Path

from .. import protocol
from ..errors import InputError
from ..generation.download import DEFAULT_MAX_BYTES, DEFAULT_URL, download_checkpoint


def add_parser(commands) -> None:
    download = commands.add_parser("download", help="download the SyncDreamer checkpoint",
                                   description="Download the checkpoint (resumes a broken download, "
                                   "checks the sha256).")
    download.add_argument("--url", default=None, help="where from (default: Hugging Face camenduru/SyncDreamer)")
    download.add_argument("--dest", type=Path, default=None,
                          help="where to (default ~/.cache/glimpse3d/syncdreamer-pretrain.ckpt)")
    download.add_argument("--sha256", default=None, help="expected sha256 (default: announced by the server)")
    download.add_argument("--force", action="store_true", help="download again even if the file is there")
    download.add_argument("--retries", type=int, default=3, help="resume this many times on a broken "
                          "connection (default 3)")
    download.add_argument("--no-verify", action="store_true",
                          help="install the file even when no sha256 is known for it (said in the output)")
    download.add_argument("--max-gb", type=float, default=DEFAULT_MAX_BYTES / 1024**3, metavar="GB",
                          help=f"refuse a file larger than this (default {DEFAULT_MAX_BYTES / 1024**3:g})")
    download.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    if args.max_gb <= 0:
        raise InputError("--max-gb must be above 0", code=protocol.ErrorCode.BAD_PARAMETER)
    path = download_checkpoint(args.url or DEFAULT_URL, args.dest, args.sha256, retries=args.retries,
                               show_progress=not args.quiet, force=args.force, no_verify=args.no_verify,
                               max_bytes=int(args.max_gb * 1024**3))
    print(path, flush=True)
    return 0
