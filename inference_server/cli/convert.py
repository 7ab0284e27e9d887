"""`python -m inference_server convert SRC DST`: a .ckpt checkpoint as .safetensors."""
from pathlib import Path

from ..errors import SetupError


def add_parser(commands) -> None:
    convert = commands.add_parser("convert", help="convert a .ckpt checkpoint to .safetensors",
                                  description="Write SRC as a .safetensors file DST (loads faster, "
                                  "without pickle).")
    convert.add_argument("src", type=Path, metavar="SRC")
    convert.add_argument("dst", type=Path, metavar="DST")
    convert.add_argument("--half", action="store_true", help="store the weights in float16 (half the size)")
    convert.add_argument("--trust-pickle", action="store_true",
                         help="allow pickled objects in SRC (only for a file you trust)")


def run(args) -> int:
    import ldm  # torch: only for this command

    try:
        path = ldm.convert_checkpoint(args.src, args.dst, half=args.half, trust_pickle=args.trust_pickle)
    except ldm.CheckpointError as exc:
        raise SetupError(str(exc), code="bad_checkpoint") from None
    print(path, flush=True)
    return 0
