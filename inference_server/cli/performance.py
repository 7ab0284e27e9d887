"""`python -m inference_server bench`: speed, memory, load time and half-precision accuracy.

The measuring itself is tools/bench.py of the repository, a development tool that the extension
zip leaves out (this module is not named after the command so that no shipped file is named
"bench")."""
import importlib.util
import sys
from pathlib import Path

from ..errors import InputError, SetupError
from ..generation.checkpoints import project_root
from .options import add_device_options


def add_parser(commands) -> None:
    bench = commands.add_parser(
        "bench", help="measure speed, memory, load time and half-precision accuracy",
        description="Benchmark the model on this machine: seconds per 16-view sample, UNet passes and "
        "TFLOP/s, peak memory, load time from .safetensors and the per-step error of half precision "
        "against float32. Without --checkpoint the full model gets random weights (speed and memory do "
        "not depend on the weights). On a CPU use few --steps and --config configs/tiny.yaml.")
    bench.add_argument("--steps", type=int, default=50, help="DDIM steps per generation (default 50)")
    bench.add_argument("--cfg-scale", type=float, default=2.0, help="guidance scale (default 2.0)")
    bench.add_argument("--samples", default="1,4", metavar="N,N",
                       help="samples per batch to time, comma-separated (default 1,4)")
    bench.add_argument("--batch-views", type=int, default=0,
                       help="views per UNet call (default 0: as the server chooses)")
    bench.add_argument("--warmup", type=int, default=1, help="untimed warm-up generations (default 1)")
    bench.add_argument("--repeats", type=int, default=3, help="timed generations; the median is shown (default 3)")
    bench.add_argument("--no-accuracy", action="store_true", help="skip the half-precision accuracy check")
    bench.add_argument("--accuracy-precisions", default=None, metavar="P,P",
                       help="half precisions to check against float32 (default: float16,bfloat16 on a "
                            "GPU; bfloat16 on a CPU, where float16 is very slow)")
    bench.add_argument("--no-startup", action="store_true", help="skip timing a server's start-up")
    bench.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write every figure here")
    group = bench.add_argument_group("model")
    group.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="the checkpoint (default: random weights)")
    group.add_argument("--config", type=Path, default=None, metavar="YAML",
                       help="model config (default configs/syncdreamer.yaml, the full model)")
    add_device_options(group)


def _bench_module():
    """tools/bench.py of the repository: a development tool, not shipped in the extension zip."""
    path = project_root() / "tools" / "bench.py"
    if not path.is_file():
        raise SetupError(f"bench is a development tool and is not installed here ({path} is missing); run it "
                         "from a clone of the repository", code="no_bench")
    if str(path.parent) not in sys.path:  # its model_tools/, as when it runs as `python tools/bench.py`
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("glimpse_tools_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(args) -> int:
    tool = _bench_module()
    BenchOptions, bench, write_json = tool.BenchOptions, tool.run_bench, tool.write_json

    try:
        samples = tuple(int(n) for n in args.samples.split(","))
    except ValueError:
        raise InputError(f"--samples takes whole numbers separated by commas, got {args.samples!r}",
                         code="bad_parameter") from None
    if not samples or min(samples) < 1 or args.steps < 1 or args.repeats < 1 or args.warmup < 0 \
            or not 0 <= args.batch_views <= 16:
        raise InputError("--samples, --steps and --repeats must be at least 1, --warmup at least 0, "
                         "--batch-views 0..16", code="bad_parameter")
    options = BenchOptions(config=args.config, checkpoint=args.checkpoint, device=args.device,
                           precision=args.precision, steps=args.steps, cfg_scale=args.cfg_scale, samples=samples,
                           batch_views=args.batch_views, low_memory=args.low_memory,
                           channels_last=args.channels_last, compile_mode=args.compile_mode, warmup=args.warmup,
                           repeats=args.repeats, accuracy=not args.no_accuracy, startup=not args.no_startup,
                           accuracy_precisions=_precision_list(args.accuracy_precisions))
    results = bench(options, say=lambda text: print(text, flush=True))
    if args.json:
        write_json(results, args.json)
    return 0


def _precision_list(text):
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    wrong = [name for name in names if name not in ("float16", "bfloat16")]
    if not names or wrong:
        raise InputError(f"--accuracy-precisions takes float16 and/or bfloat16, got {text!r}", code="bad_parameter")
    return names
