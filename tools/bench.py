"""`python -m inference_server bench` (or `python tools/bench.py`): how fast and how big the model
is on this machine. A development tool: it lives beside the package, not in the extension zip.

Measures, with the server's own loading code and the generation pipeline that users run
(pipeline.Pipeline: preprocessing, sampling, decoding, writing the view sets): the load time from a
`.safetensors` file (in process, and from process start to the READY line of `serve --preload`),
seconds per 16-view sample for each batch of samples, UNet passes and achieved TFLOP/s (from
model_tools.flops' analytic count), peak memory (measured, and as model_tools.memory_estimate expects it on a
GPU), and the per-step relative error of the half-precision noise prediction against float32. Without a checkpoint the model has random weights: speed and
memory do not depend on the weights.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import ldm
from ldm.checkpoint import save_safetensors
from model_tools.flops import count_generation_flops
from model_tools.memory_estimate import estimate_generation_memory
from model_tools.precision_check import noise_prediction_errors
from ldm.schedule import ddim_timesteps

from inference_server.generation import devices
from inference_server.generation.checkpoints import configs_dir
from inference_server.errors import SetupError
from inference_server.generation.images import load_image
from inference_server.generation.params import parse_params
from inference_server.generation.pipeline import GenerationRequest, Pipeline
from inference_server.generation.preprocess import preprocess_for_syncdreamer, to_model_input
from inference_server.generation.progress import DECODING, SAMPLING, WRITING
from inference_server.protocol import READY_PREFIX
from inference_server.generation.service import FULL_CONFIG, SyncDreamerService, build_random_model
from inference_server.version import __version__

EXAMPLE_IMAGE = Path(__file__).resolve().parent.parent / "examples" / "cat.png"
ELEVATION = 30.0
SAMPLING_SEED = 0
STARTUP_TIMEOUT_S = 600


@dataclass
class BenchOptions:
    config: Path | None = None          # default: the full model
    checkpoint: Path | None = None      # default: random weights
    device: str = "auto"
    precision: str = "auto"
    steps: int = 50
    cfg_scale: float = 2.0
    samples: tuple[int, ...] = (1, 4)
    batch_views: int = 0                # 0: as the server chooses
    low_memory: bool | None = None
    channels_last: bool = False
    compile_mode: str = "off"
    warmup: int = 1
    repeats: int = 3
    accuracy: bool = True
    # half precisions to compare with float32; default: the run's own and the other half
    # precision, or bfloat16 alone for a float32 run (float16 is very slow on a CPU)
    accuracy_precisions: tuple[str, ...] | None = None
    startup: bool = True
    image: Path = EXAMPLE_IMAGE


def run_bench(options: BenchOptions, say=print) -> dict:
    """Run every measurement, say each result as it comes, and return them all."""
    config = Path(options.config) if options.config else configs_dir() / FULL_CONFIG
    device = devices.resolve_device(options.device)
    dtype = devices.resolve_precision(options.precision, device)
    devices.configure_math(device, dtype)
    results: dict = {"environment": environment(device, dtype), "config": str(config),
                     "checkpoint": None if options.checkpoint is None else str(options.checkpoint),
                     "steps_asked": options.steps, "steps": len(ddim_timesteps(options.steps)),
                     "cfg_scale": options.cfg_scale}
    say(format_environment(results))
    image = model_input(options.image)
    with tempfile.TemporaryDirectory(prefix="glimpse-bench-") as scratch:
        reference, weights_file = prepare_weights(options, config, device, dtype, Path(scratch))
        results["load"] = measure_load(options, config, weights_file, device)
        service = results["load"].pop("service")
        say(format_load(results["load"]))
        results["flops"] = flop_counts(config, options, service)
        say(format_flops(results["flops"]))
        if options.accuracy:
            results["accuracy"] = measure_accuracy(options, config, reference, service, weights_file, image)
            say(format_accuracy(results["accuracy"]))
        del reference
        devices.free_cached_memory(device)
        results["speed"] = [measure_speed(options, config, service, samples, Path(scratch))
                            for samples in options.samples]
        say(format_speed(results["speed"], results))
        service.unload_model()
        if options.startup:
            results["startup"] = measure_startup(options, config, weights_file, device, dtype)
            say(format_startup(results["startup"]))
    return results


# --------------------------------------------------------------------------- environment


def environment(device: torch.device, dtype: torch.dtype) -> dict:
    info = {
        "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else platform.processor() or platform.machine()),
        "precision": devices.dtype_name(dtype),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
        "glimpse": __version__,
    }
    if device.type == "cuda":
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory / 1024 ** 3, 1)
    return info


def model_input(path: Path) -> torch.Tensor:
    """The example image as the model sees it: (1, 3, 256, 256) in [-1, 1]."""
    prepared = preprocess_for_syncdreamer(load_image(path), 200, "auto")
    return torch.from_numpy(to_model_input(prepared))[None]


# --------------------------------------------------------------------------- weights and loading


def prepare_weights(options: BenchOptions, config: Path, device: torch.device, dtype: torch.dtype,
                    scratch: Path):
    """The float32 reference model on the device (for the accuracy check; None without one) and
    the .safetensors file that the timed load reads."""
    half = dtype != torch.float32
    reference = None
    if options.checkpoint is None:
        reference = build_random_model(config)
        weights_file = save_safetensors(reference.state_dict(), scratch / "random-weights.safetensors", half=half)
        reference = reference.to(device) if options.accuracy else None
        return reference, weights_file
    checkpoint = Path(options.checkpoint)
    if checkpoint.suffix == ".safetensors":
        weights_file = checkpoint
    else:
        weights_file = ldm.convert_checkpoint(checkpoint, scratch / "checkpoint.safetensors", half=half)
    if options.accuracy:
        reference = ldm.build_model(config, device="meta", dtype=torch.float32)
        ldm.load_checkpoint(reference, checkpoint, device=device)
    return reference, weights_file


def measure_load(options: BenchOptions, config: Path, weights_file: Path, device: torch.device) -> dict:
    """Time the server's own load (build on meta, fill from the file onto the device)."""
    if device.type == "cuda":
        torch.cuda.init()  # the CUDA context belongs to process start-up, measured apart
    service = SyncDreamerService(config_path=config, checkpoint_path=weights_file, device=str(device),
                                 precision=options.precision, low_memory=options.low_memory, channels_last=options.channels_last,
                                 compile_mode=options.compile_mode)
    started = time.perf_counter()
    service.load_model()
    synchronize(device)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "file": weights_file.name, "file_gb": weights_file.stat().st_size / 1e9,
            "device": str(device), "service": service}


def measure_startup(options: BenchOptions, config: Path, weights_file: Path, device: torch.device,
                    dtype: torch.dtype) -> dict:
    """Seconds from starting `serve --preload` to its READY line (interpreter, imports, CUDA, load)."""
    command = [sys.executable, "-m", "inference_server", "serve", "--preload", "--port", "0",
               "--config", str(config), "--checkpoint", str(weights_file), "--device", str(device),
               "--precision", devices.dtype_name(dtype)]
    if options.low_memory is not None:
        command.append("--low-memory" if options.low_memory else "--no-low-memory")
    env = dict(os.environ, GLIMPSE_SERVER_TOKEN=secrets.token_urlsafe(16))
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith(READY_PREFIX):
                return {"seconds": time.perf_counter() - started, "command": " ".join(command[1:])}
        raise SetupError("the server stopped before it was ready: " + process.stderr.read()[-2000:],
                         code="bench_failed")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


# --------------------------------------------------------------------------- speed


def flop_counts(config: Path, options: BenchOptions, service: SyncDreamerService) -> dict:
    """FLOPs of one sample: the reference's model work and what this code executes."""
    batch_views = service.batch_views(options.batch_views)
    counts = {}
    for name, fast_path in (("reference", False), ("executed", True)):
        count = count_generation_flops(config, options.steps, options.cfg_scale, samples=1,
                                       batch_view_num=batch_views, fast_path=fast_path)
        counts[name] = {"total": count.total, "sampling": count.sampling, "step": count.step,
                        "per_step": dict(count.per_step)}
    return counts


def measure_speed(options: BenchOptions, config: Path, service: SyncDreamerService, samples: int,
                  scratch: Path) -> dict:
    """Warm up, then time `repeats` runs of the pipeline that users run, `samples` samples each:
    from the image file to written view sets, split into its phases by its progress events."""
    model, device = service.model, service.device
    batch_views = service.batch_views(options.batch_views)
    pipeline = Pipeline(service)

    def generate(steps: int, seed: int) -> dict:
        params = parse_params({"steps": steps, "cfg_scale": options.cfg_scale, "seed": seed, "samples": samples,
                               "batch_views": options.batch_views, "elevation": ELEVATION})
        output = scratch / f"speed-{samples}-{seed}-{steps}"
        starts = {}

        def progress(event):
            if event.phase not in starts:
                synchronize(device)  # the phase before has finished on the GPU too
                starts[event.phase] = time.perf_counter()

        started = time.perf_counter()
        pipeline.run(GenerationRequest(image=options.image, output=output, params=params), progress=progress)
        finished = time.perf_counter()
        shutil.rmtree(output)
        return {"preparing_s": starts[SAMPLING] - started, "sampling_s": starts[DECODING] - starts[SAMPLING],
                "decoding_s": starts[WRITING] - starts[DECODING], "writing_s": finished - starts[WRITING],
                "seconds": finished - started}

    for run in range(options.warmup):
        generate(min(options.steps, 3), SAMPLING_SEED + run)
    reset_peak_memory(device)
    runs = [generate(options.steps, SAMPLING_SEED + run) for run in range(options.repeats)]
    median = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    total, sampling = median["seconds"], median["sampling_s"]
    steps = len(ddim_timesteps(options.steps))
    guided = 2 if options.cfg_scale != 1.0 else 1
    flops = {name: count_generation_flops(config, options.steps, options.cfg_scale, samples=samples,
                                          batch_view_num=batch_views, fast_path=fast_path).total
             for name, fast_path in (("reference", False), ("executed", True))}
    return {
        "samples": samples,
        "batch_views": batch_views,
        "seconds": total,
        "seconds_per_sample": total / samples,
        "preparing_seconds": median["preparing_s"],
        "sampling_seconds": sampling,
        "decoding_seconds": median["decoding_s"],
        "writing_seconds": median["writing_s"],
        "unet_view_passes_per_s": steps * model.view_num * guided * samples / sampling,
        "unet_calls_per_s": steps * -(-model.view_num // batch_views) / sampling,
        "tflops_reference": flops["reference"] / total / 1e12,
        "tflops_executed": flops["executed"] / total / 1e12,
        "peak_memory": peak_memory(device),
        # what model_tools.memory_estimate expects a CUDA GPU to hold at this precision
        "estimated_gpu_peak_gb": estimate_generation_memory(
            config, service.dtype, samples, batch_views, options.cfg_scale, service.low_memory).peak_gb,
        "runs": runs,
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """Peak GPU memory since the last reset; on the CPU the process's peak resident memory."""
    if device.type == "cuda":
        return {"kind": "gpu", "allocated_gb": torch.cuda.max_memory_allocated(device) / 1e9,
                "reserved_gb": torch.cuda.max_memory_reserved(device) / 1e9}
    return {"kind": "process_rss", "allocated_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
            "reserved_gb": None}


# --------------------------------------------------------------------------- accuracy


def measure_accuracy(options: BenchOptions, config: Path, reference, service: SyncDreamerService,
                     weights_file: Path, image: torch.Tensor) -> list[dict]:
    """Per-step relative error of each half precision's guided noise prediction against float32.
    The run's own precision uses the loaded model itself, with its speed options."""
    results = []
    for name in accuracy_precisions(options, service.dtype):
        dtype = devices.resolve_precision(name, service.device)
        if dtype == service.dtype:
            candidate = service.model
        else:
            candidate = ldm.build_model(config, device="meta", dtype=dtype)
            ldm.load_checkpoint(candidate, weights_file, device=service.device)
        errors = noise_prediction_errors(reference, candidate, image.to(service.device), ELEVATION,
                                         steps=options.steps, cfg_scale=options.cfg_scale,
                                         batch_view_num=service.batch_views(options.batch_views),
                                         seed=SAMPLING_SEED)
        del candidate
        devices.free_cached_memory(service.device)
        results.append({"precision": name, "errors": errors, "max": max(errors),
                        "mean": sum(errors) / len(errors),
                        "timesteps": ddim_timesteps(options.steps).flip(0).tolist()})  # in the order run
    return results


def accuracy_precisions(options: BenchOptions, run_dtype: torch.dtype) -> tuple[str, ...]:
    if options.accuracy_precisions:
        return tuple(options.accuracy_precisions)
    halves = {torch.float16: ("float16", "bfloat16"), torch.bfloat16: ("bfloat16", "float16")}
    return halves.get(run_dtype, ("bfloat16",))


# --------------------------------------------------------------------------- report


def format_environment(results: dict) -> str:
    env = results["environment"]
    versions = f"python {env['python']}, torch {env['torch']}"
    if env["cuda"]:
        versions += f" (CUDA {env['cuda']}, cuDNN {env['cudnn']})"
    memory = f", {env['gpu_memory_gib']} GiB" if "gpu_memory_gib" in env else ""
    return "\n".join([
        f"Glimpse3D SyncDreamer benchmark ({env['glimpse']})",
        f"  device     {env['device']}: {env['device_name']}{memory}; {env['cpu_threads']} CPU threads",
        f"  precision  {env['precision']} (norm statistics, schedule and DDIM update in float32)",
        f"  versions   {versions}",
        f"  model      {results['config']}, "
        f"{'random weights' if results['checkpoint'] is None else results['checkpoint']}",
        f"  run        {results['steps']} DDIM steps, guidance {results['cfg_scale']:g}",
    ])


def format_load(load: dict) -> str:
    cuda = "; the CUDA context was made beforehand" if load["device"].startswith("cuda") else ""
    return (f"load: {load['seconds']:.2f} s to ready from {load['file']} ({load['file_gb']:.2f} GB, "
            f"just written, so in the page cache{cuda})")


def format_flops(flops: dict) -> str:
    ref, done = flops["reference"], flops["executed"]
    return (f"FLOPs per sample: {flop_text(ref['total'])} of reference model work "
            f"({flop_text(ref['step'])} per step); this code executes {flop_text(done['total'])}")


def flop_text(flops: float) -> str:
    return f"{flops / 1e12:.1f} TFLOP" if flops >= 1e12 else f"{flops / 1e9:.1f} GFLOP"


def format_accuracy(accuracy: list[dict]) -> str:
    lines = ["accuracy: relative error of the guided noise prediction against float32, per step "
             "(the same image, draws and x_t for both)"]
    for row in accuracy:
        errors = ", ".join(f"{e * 100:.2f}" for e in row["errors"])
        lines.append(f"  {row['precision']:>8}: max {row['max'] * 100:.2f}%, mean {row['mean'] * 100:.2f}%; "
                     f"per step (%): {errors}")
    return "\n".join(lines)


def format_speed(speed: list, results: dict) -> str:
    memory_kind = speed[0]["peak_memory"]["kind"] if speed else "gpu"
    memory_label = "peak GPU GB" if memory_kind == "gpu" else "peak RSS GB"
    lines = [f"speed ({results['steps']} steps, guidance {results['cfg_scale']:g}; median run):",
             f"  {'samples':>7} {'views/call':>10} {'s/run':>8} {'s/sample':>9} {'UNet view-passes/s':>19} "
             f"{'UNet calls/s':>13} {'TFLOP/s ref':>12} {'TFLOP/s exec':>13} {memory_label:>12} "
             f"{'est. GPU GB':>12}"]
    for row in speed:
        lines.append(f"  {row['samples']:>7} {row['batch_views']:>10} {row['seconds']:>8.2f} "
                     f"{row['seconds_per_sample']:>9.2f} {row['unet_view_passes_per_s']:>19.1f} "
                     f"{row['unet_calls_per_s']:>13.2f} {row['tflops_reference']:>12.2f} "
                     f"{row['tflops_executed']:>13.2f} {row['peak_memory']['allocated_gb']:>12.2f} "
                     f"{row['estimated_gpu_peak_gb']:>12.2f}")
    for row in speed:
        lines.append(f"  {row['samples']} sample(s), s/run by phase of the pipeline: preparing "
                     f"{row['preparing_seconds']:.2f}, sampling {row['sampling_seconds']:.2f}, decoding "
                     f"{row['decoding_seconds']:.2f}, writing {row['writing_seconds']:.2f}")
    return "\n".join(lines)


def format_startup(startup: dict) -> str:
    return f"start-up: {startup['seconds']:.2f} s from process start to READY ({startup['command']})"


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":  # python tools/bench.py [options]: the same as python -m inference_server bench
    from inference_server.cli.main import main

    sys.exit(main(["bench", *sys.argv[1:]]))
