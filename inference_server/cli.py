"""The command line: `python -m inference_server serve | generate | download | convert`.

Heavy imports (torch, the model) happen inside the commands that need them, so `--help` and
`download` start at once.
"""
import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from . import mesh_command, protocol
from .batch_command import add_batch_command, run_batch_command
from .cluster.options import add_ray_options, ray_requested
from .download import DEFAULT_MAX_BYTES
from .errors import InputError, SetupError
from .progress import TerminalProgress
from .server_tls import add_tls_options, clear_text_warning, tls_files_from_args
from .version import __version__

TOKEN_ENV = protocol.TOKEN_ENV
EXIT_INPUT = 2  # the person's input (an image, a parameter, an existing folder)
EXIT_SETUP = 3  # this machine (no checkpoint, no GPU, no network)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m inference_server",
        description="SyncDreamer for Glimpse3D: one image in, sixteen consistent views out.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the local inference server (HTTP) for Blender",
                                description="Run the inference server. The bearer token comes from the "
                                f"environment variable {TOKEN_ENV}; without it one is made and printed.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve.add_argument("--idle-unload", type=float, default=0.0, metavar="SECONDS",
                       help="unload the model after this many idle seconds (default 0: never)")
    serve.add_argument("--preload", action="store_true", help="load the model before reporting ready")
    serve.add_argument("--output-root", type=Path, default=None, metavar="DIR",
                       help="where job outputs go when a job names no output_dir "
                            "(default ~/.cache/glimpse3d/outputs)")
    serve.add_argument("--max-body-mb", type=float, default=protocol.DEFAULT_MAX_BODY_MB, metavar="MB",
                       help=f"largest request body accepted (default {protocol.DEFAULT_MAX_BODY_MB:g}; image files "
                            "may be about 3/4 of it, as base64 makes them 4/3 larger)")
    serve.add_argument("--max-queue", type=int, default=protocol.DEFAULT_MAX_QUEUE, metavar="N",
                       help=f"jobs that may wait; beyond them a job is answered 429 with Retry-After "
                            f"(default {protocol.DEFAULT_MAX_QUEUE})")
    serve.add_argument("--preview-concurrency", type=int, default=protocol.DEFAULT_PREVIEW_CONCURRENCY,
                       metavar="N", help="images decoded at once for previews and job checks (default "
                                         f"{protocol.DEFAULT_PREVIEW_CONCURRENCY})")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="also answer requests addressed to this host name (repeatable; '*' any). By default "
                            "only the address the server listens on, against DNS rebinding")
    serve.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                       help="accept requests from this web page origin, e.g. http://localhost:3000 "
                            "(repeatable; '*' any). By default requests from browsers are refused")
    serve.add_argument("--parent-pid", type=int, default=None, metavar="PID",
                       help="exit within a few seconds once the process PID has ended (the add-on passes "
                            "Blender's)")
    serve.add_argument("--exit-with-stdin", action="store_true",
                       help="exit when stdin is closed (for a parent that holds a pipe to it)")
    serve.add_argument("--verbose", action="store_true", help="log every request, not only refused ones")
    add_tls_options(serve)
    _add_model_options(serve)
    add_ray_options(serve, serve=True)

    generate = commands.add_parser("generate", help="generate the sixteen views of one image",
                                   description="Generate the sixteen views of INPUT into OUTDIR "
                                   "(with --samples N > 1: OUTDIR/sample_0 .. sample_N-1).")
    generate.add_argument("input", type=Path, metavar="INPUT", help="the image (RGBA PNG works best)")
    generate.add_argument("-o", "--output", type=Path, required=True, metavar="OUTDIR",
                          help="the output folder")
    _add_generation_options(generate)
    generate.add_argument("--overwrite", action="store_true", help="replace an existing view set")
    generate.add_argument("--quiet", action="store_true", help="no progress bar")
    mesh_command.add_generate_options(generate)
    _add_model_options(generate)

    add_batch_command(commands, _add_generation_options, _add_model_options)

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

    convert = commands.add_parser("convert", help="convert a .ckpt checkpoint to .safetensors",
                                  description="Write SRC as a .safetensors file DST (loads faster, "
                                  "without pickle).")
    convert.add_argument("src", type=Path, metavar="SRC")
    convert.add_argument("dst", type=Path, metavar="DST")
    convert.add_argument("--half", action="store_true", help="store the weights in float16 (half the size)")
    convert.add_argument("--trust-pickle", action="store_true",
                         help="allow pickled objects in SRC (only for a file you trust)")
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
    _add_device_options(group)
    mesh_command.add_parser(commands)
    return parser


def _add_generation_options(parser):
    parser.add_argument("--elevation", type=float, help="elevation of the input view in degrees "
                        "(default 30; -10..40 recommended)")
    parser.add_argument("--crop-size", type=int, help="object size in the 256 px input, -1 = no crop "
                        "(default 200)")
    parser.add_argument("--cfg-scale", type=float, help="guidance scale (default 2.0)")
    parser.add_argument("--steps", type=int, help="DDIM sampling steps (default 50)")
    parser.add_argument("--seed", type=int, help="random seed (default 42)")
    parser.add_argument("--samples", type=int, help="independent view sets (default 1)")
    parser.add_argument("--batch-views", type=int, help="views per network call; lower = less GPU "
                        "memory (default 0: automatic, 16, or 4 with --low-memory)")
    parser.add_argument("--background", choices=("auto", "keep", "remove"),
                          help="auto (default): remove it unless the image has transparency")
    parser.add_argument("--use-posterior-mean", action="store_true", default=None,
                          help="condition on the VAE mean (a little more deterministic)")


def _given_params(args) -> dict:
    """The generation flags that were given (the others take the defaults)."""
    given = {"elevation": args.elevation, "crop_size": args.crop_size, "cfg_scale": args.cfg_scale,
             "steps": args.steps, "seed": args.seed, "samples": args.samples, "batch_views": args.batch_views,
             "background": args.background, "use_posterior_mean": args.use_posterior_mean}
    return {name: value for name, value in given.items() if value is not None}


def _add_model_options(parser):
    group = parser.add_argument_group("model")
    group.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="the checkpoint (default: GLIMPSE_CHECKPOINT, ./ckpt/, ~/.cache/glimpse3d/)")
    group.add_argument("--config", type=Path, default=None, metavar="YAML",
                       help="model config (default configs/syncdreamer.yaml, or configs/tiny.yaml with "
                            "--random-weights); only for other model variants")
    group.add_argument("--random-weights", action="store_true",
                       help="the tiny model with random weights: no checkpoint needed, the views are NOISE "
                            "(for trying the pipeline and tests)")
    _add_device_options(group)
    group.add_argument("--rembg-model", type=Path, default=None, metavar="PATH",
                       help="background-removal model file (default: rembg's u2net.onnx)")


def _add_device_options(group):
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


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"serve": run_serve, "generate": run_generate, "download": run_download,
               "convert": run_convert, "bench": run_bench, "batch": run_batch,
               "mesh": mesh_command.run}[args.command]
    try:
        return handler(args)
    except InputError as exc:
        _error(exc.message)
        return EXIT_INPUT
    except SetupError as exc:
        _error(exc.message)
        return EXIT_SETUP
    except KeyboardInterrupt:
        _error("interrupted; nothing half-written was kept")
        return 130


def _error(message: str):
    print(f"error: {message}", file=sys.stderr, flush=True)


def _service_options(args) -> dict:
    """SyncDreamerService's keyword arguments from the model flags."""
    return dict(config_path=args.config, checkpoint_path=args.checkpoint, device=args.device,
                precision=args.precision, random_weights=args.random_weights, rembg_model=args.rembg_model,
                low_memory=args.low_memory, channels_last=args.channels_last, compile_mode=args.compile_mode)


def _service(args):
    from .service import SyncDreamerService

    service = SyncDreamerService(**_service_options(args))
    if service.random_weights:
        print(f"WARNING: {service.info()['warning']}", file=sys.stderr, flush=True)
    return service


def run_generate(args) -> int:
    from .params import cli_flag, parse_params
    from .pipeline import GenerationRequest, Pipeline, check_request

    params = parse_params(_given_params(args), spell=cli_flag)
    request = GenerationRequest(image=args.input, output=args.output, params=params, input_name=args.input.name,
                                overwrite=args.overwrite, options=mesh_command.job_options_from_args(args))
    # refuse a bad image or an occupied folder before loading the model
    check_request(request, overwrite_hint="pass --overwrite")
    service = _service(args)
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


def run_serve(args) -> int:
    from .checkpoints import cache_dir
    from .pipeline import Pipeline
    from .serve import configure_logging, serve
    from .server_app import ServerSettings, is_loopback

    if args.max_queue < 1 or args.preview_concurrency < 1 or args.max_body_mb <= 0:
        raise InputError("--max-queue and --preview-concurrency must be at least 1, --max-body-mb above 0",
                         code=protocol.ErrorCode.BAD_PARAMETER)
    configure_logging(args.verbose)
    log = logging.getLogger("glimpse")
    token = os.environ.get(protocol.TOKEN_ENV, "").strip()
    if not token:
        token = secrets.token_urlsafe(24)
        log.warning("%s is not set; this server's token is: %s", protocol.TOKEN_ENV, token)
    tls = tls_files_from_args(args, cache_dir())
    if not is_loopback(args.host):
        log.warning("listening on %s: other machines can reach this server; anyone with the token can run jobs "
                    "on this GPU. output_dir is refused; files are served over HTTP only.", args.host)
        if tls is None:
            log.warning("%s", clear_text_warning(args.host))
    settings = ServerSettings(host=args.host, output_root=args.output_root or cache_dir() / "outputs",
                              idle_unload_s=args.idle_unload, max_body_bytes=int(args.max_body_mb * protocol.MIB),
                              max_queue=args.max_queue, preview_concurrency=args.preview_concurrency,
                              allowed_hosts=tuple(args.allow_host), allowed_origins=tuple(args.allow_origin))
    if ray_requested(args) and tls is not None:
        raise InputError("HTTPS (--tls-*) is served by the plain server, not yet with --ray: leave out --ray, or "
                         "put a TLS-terminating proxy in front of the Ray server", code=protocol.ErrorCode.BAD_PARAMETER)
    if ray_requested(args):  # Ray Serve instead of uvicorn: cluster/serve_ray.py
        from .cluster.serve_ray import serve_on_ray

        return serve_on_ray(args, token, settings, _service_options(args))
    service = _service(args)
    if args.preload:
        log.info("loading the model ...")
        service.load_model()

    def announce(port, url):
        info = service.info()
        mode = "low-memory mode, " if info["low_memory"] else ""
        log.info("serving on %s (device %s, precision %s, %s%d views per UNet call by default); outputs in %s",
                 url, info["device"], info["precision"], mode, info["auto_batch_views"],
                 Path(settings.output_root).expanduser().resolve())

    return serve(Pipeline(service), token, settings, args.port, verbose=args.verbose, parent_pid=args.parent_pid,
                 exit_with_stdin=args.exit_with_stdin, on_ready=announce, tls=tls)


def run_batch(args) -> int:
    if args.random_weights:
        print("WARNING: --random-weights: every view set will be noise (for trying the pipeline)", file=sys.stderr)
    return run_batch_command(args, _given_params(args), _service_options(args))


def run_download(args) -> int:
    from .download import DEFAULT_URL, download_checkpoint

    if args.max_gb <= 0:
        raise InputError("--max-gb must be above 0", code=protocol.ErrorCode.BAD_PARAMETER)
    path = download_checkpoint(args.url or DEFAULT_URL, args.dest, args.sha256, retries=args.retries,
                               show_progress=not args.quiet, force=args.force, no_verify=args.no_verify,
                               max_bytes=int(args.max_gb * 1024**3))
    print(path, flush=True)
    return 0


def run_convert(args) -> int:
    import ldm

    try:
        path = ldm.convert_checkpoint(args.src, args.dst, half=args.half, trust_pickle=args.trust_pickle)
    except ldm.CheckpointError as exc:
        raise SetupError(str(exc), code="bad_checkpoint") from None
    print(path, flush=True)
    return 0


def _bench_module():
    """tools/bench.py of the repository: a development tool, not shipped in the extension zip."""
    import importlib.util

    from .checkpoints import project_root

    path = project_root() / "tools" / "bench.py"
    if not path.is_file():
        raise SetupError(f"bench is a development tool and is not installed here ({path} is missing); run it "
                         "from a clone of the repository", code="no_bench")
    spec = importlib.util.spec_from_file_location("glimpse_tools_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run_bench(args) -> int:
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
