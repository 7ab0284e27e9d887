"""Flags more than one command shares: the generation parameters and the model options."""
import argparse
import sys
from pathlib import Path

from .. import protocol
from ..generation.params import cli_flag


def add_generation_options(parser):
    """One flag per generation parameter (protocol.PARAMS: names, defaults and hints are there;
    generation/params.py checks the values, as for the Python API and HTTP)."""
    for spec in protocol.PARAMS:
        if spec.kind == "flag":
            parser.add_argument(cli_flag(spec.name), action="store_true", default=None, help=spec.hint)
            continue
        default = f"default {spec.default:g}" if spec.kind == "number" else f"default {spec.default}"
        parser.add_argument(cli_flag(spec.name), type=_FLAG_TYPES[spec.kind], choices=spec.choices or None,
                            help=f"{spec.hint} ({default})")


_FLAG_TYPES = {"number": float, "integer": int, "choice": str}


def given_params(args) -> dict:
    """The generation flags that were given (the others take the defaults)."""
    given = {name: getattr(args, name) for name in protocol.PARAM_NAMES}
    return {name: value for name, value in given.items() if value is not None}


def add_model_options(parser):
    group = parser.add_argument_group("model")
    group.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="the checkpoint (default: GLIMPSE_CHECKPOINT, ./ckpt/, ~/.cache/glimpse3d/)")
    group.add_argument("--config", type=Path, default=None, metavar="YAML",
                       help="model config (default configs/syncdreamer.yaml, or configs/tiny.yaml with "
                            "--random-weights); only for other model variants")
    group.add_argument("--random-weights", action="store_true",
                       help="the tiny model with random weights: no checkpoint needed, the views are NOISE "
                            "(for trying the pipeline and tests)")
    add_device_options(group)
    group.add_argument("--rembg-model", type=Path, default=None, metavar="PATH",
                       help="background-removal model file (default: rembg's u2net.onnx)")


def add_device_options(group):
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    group.add_argument("--precision", default="auto", choices=("auto", "float32", "float16", "bfloat16"),
                       help="auto: float16 on CUDA (bfloat16 if float16 overflows), float32 elsewhere")
    group.add_argument("--low-memory", action=argparse.BooleanOptionalAction, default=None,
                       help="for GPUs with little memory: CLIP and the VAE wait on the CPU, four views "
                            "per UNet call (slower; default: on for GPUs under 8 GB)")
    group.add_argument("--channels-last", action="store_true",
                       help="channels-last memory layout for the UNet's convolutions (may be faster on a GPU)")
    # The modes are checked by the service (ldm.speed.COMPILE_MODES): this module imports no torch.
    group.add_argument("--compile", default="off", dest="compile_mode", metavar="MODE",
                       help="torch.compile the UNet: off (default), default, max-autotune, or reduce-overhead "
                            "(also replays it as CUDA graphs); the first generation is slow while it compiles")


def service_options(args) -> dict:
    """SyncDreamerService's keyword arguments from the model flags."""
    return dict(config_path=args.config, checkpoint_path=args.checkpoint, device=args.device,
                precision=args.precision, random_weights=args.random_weights, rembg_model=args.rembg_model,
                low_memory=args.low_memory, channels_last=args.channels_last, compile_mode=args.compile_mode)


def make_service(args):
    """The model service of the model flags (torch is imported here, not at `--help`)."""
    from ..generation.service import SyncDreamerService

    service = SyncDreamerService(**service_options(args))
    if service.random_weights:
        print(f"WARNING: {service.info()['warning']}", file=sys.stderr, flush=True)
    return service
