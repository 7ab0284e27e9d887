"""SyncDreamerService: the model on its device, and one image in, sixteen views out (in memory).

Written view sets come from generation/pipeline.py, which every entry point calls and which uses `run`
and `set_metadata` of this service. The names that users of the original Glimpse3D module
know (`load_model`, `unload_model`, `generate`, `generate_and_save`) are kept.
"""
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import ldm
from ldm.schedule import ddim_timesteps
from ldm.speed import COMPILE_MODES, apply_speed_options

from ..cameras import model_buffers
from ..errors import SetupError
from ..protocol import SET_FILES
from ..version import __version__
from ..view_set.writing import model_output_to_views
from . import devices
from .checkpoints import configs_dir, file_sha256, find_checkpoint
from .images import load_image, normalize_mode
from .model_info import AUTO_BATCH_VIEWS, FULL_CONFIG, LOW_MEMORY_BATCH_VIEWS, TINY_CONFIG, random_weights_warning
from .params import GenerationParams, cli_switch, parse_params, python_keyword
from .pipeline import Pipeline, check_request, request_for
from .preprocess import background_source, preprocess_for_syncdreamer, to_model_input
from .progress import LOADING_MODEL, PREPARING, SAMPLING, GenerationCancelled, ProgressEvent

log = logging.getLogger("glimpse")
RANDOM_WEIGHTS_SEED = 0  # the random-weight model is the same on every run
SAMPLER = "ddim"
DDIM_ETA = 1.0  # the reference samples with eta = 1 (stochastic DDIM)




@dataclass
class GenerationResult:
    """What one run produced, before anything is written."""

    views: list  # per sample, the 16 PIL RGB views
    model_input: object  # the preprocessed 256x256 RGB image that the model saw
    background: str  # where the object mask came from: alpha, rembg or keep
    params: GenerationParams
    seconds: float


class SyncDreamerService:
    """Holds the model (loaded on first use or by `load_model`) and generates view sets.

    `checkpoint_path`: the checkpoint (default: searched, see checkpoints.py);
    `device`: auto, cpu, cuda[:N] or mps; `precision`: auto, float32, float16 or bfloat16;
    `random_weights`: the tiny model with seeded random weights, no checkpoint needed (the
    views are noise: for trying the pipeline and for tests); `low_memory`: CLIP and the VAE wait
    on the CPU and four views go through the UNet at a time (None = on for GPUs under 8 GB);
    `channels_last`, `compile_mode`: the optional speed-ups of ldm.speed; `switch(name, value)`
    spells an option in messages as the person sets it (params.cli_switch, params.python_switch).
    """

    def __init__(self, config_path=None, checkpoint_path=None, device="auto", precision="auto",
                 random_weights=False, rembg_model=None, low_memory=None, channels_last=False,
                 compile_mode="off", switch=cli_switch):
        self.switch = switch
        self.random_weights = bool(random_weights)
        default_config = TINY_CONFIG if self.random_weights else FULL_CONFIG
        self.config_path = Path(config_path) if config_path else configs_dir() / default_config
        if not self.config_path.is_file():
            raise SetupError(f"model config not found: {self.config_path}; the configs/ folder of the "
                             "project is missing or incomplete", code="no_config")
        self.checkpoint_path = None if self.random_weights else find_checkpoint(checkpoint_path, switch)
        self.checkpoint_sha256 = None  # of the checkpoint, once the model is loaded from it (cameras.json)
        self.device = devices.resolve_device(device)
        self.dtype = devices.resolve_precision(precision, self.device)
        self.low_memory = devices.resolve_low_memory(low_memory, self.device)
        self.channels_last = bool(channels_last)
        if compile_mode not in COMPILE_MODES:
            raise SetupError(f"unknown compile mode {compile_mode!r}; use one of {', '.join(COMPILE_MODES)}",
                             code="bad_compile_mode")
        self.compile_mode = compile_mode
        self.rembg_model = rembg_model
        self.model = None
        self._lock = threading.RLock()  # one model operation at a time (load, unload, generate)

    # --- model -----------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def info(self) -> dict:
        return {
            "loaded": self.loaded,
            "checkpoint": None if self.checkpoint_path is None else str(self.checkpoint_path),
            "config": self.config_path.name,
            "random_weights": self.random_weights,
            "device": str(self.device),
            "precision": devices.dtype_name(self.dtype),
            "low_memory": self.low_memory,
            "auto_batch_views": self.batch_views(0),
            "channels_last": self.channels_last,
            "compile": self.compile_mode,
            "warning": random_weights_warning(self.switch) if self.random_weights else None,
        }

    def batch_views(self, asked: int) -> int:
        """Views per UNet call for a job that asked for `asked` (0 = automatic)."""
        if asked:
            return asked
        return LOW_MEMORY_BATCH_VIEWS if self.low_memory else AUTO_BATCH_VIEWS

    def gpu_memory(self):
        return devices.gpu_memory(self.device)

    def load_model(self):
        """Build the model and load its weights onto the device (nothing happens if loaded)."""
        with self._lock:
            if self.model is not None:
                return self.model
            devices.configure_math(self.device, self.dtype)
            try:
                if self.random_weights:
                    model = self._build_random()
                else:
                    model = self._build_from_checkpoint()
            except ldm.CheckpointError as exc:
                raise SetupError(str(exc), code="bad_checkpoint") from None
            except Exception as exc:
                devices.free_cached_memory(self.device)
                if devices.is_out_of_memory(exc):
                    raise SetupError(f"the model does not fit into the memory of {self.device}; close "
                                     f"other programs that use the GPU, or start with {self.switch('low_memory')}",
                                     code="out_of_memory") from None
                raise
            if self.low_memory:
                model.offload_waiting_parts()
            apply_speed_options(model, channels_last=self.channels_last, compile_mode=self.compile_mode)
            self.model = model
            return model

    def _build_random(self):
        return build_random_model(self.config_path).to(device=self.device, dtype=self.dtype)

    def _build_from_checkpoint(self):
        # built on "meta" (no memory), filled from the file straight onto the device
        model = ldm.build_model(self.config_path, device="meta", dtype=self.dtype)
        ldm.load_checkpoint(model, self.checkpoint_path, device=self.device)
        if self.checkpoint_sha256 is None:  # once per service; the file was just read, so it is cached
            self.checkpoint_sha256 = file_sha256(self.checkpoint_path)
        return model

    def unload_model(self):
        """Drop the model and give its memory back (the next generation loads it again)."""
        with self._lock:
            self.model = None
            devices.free_cached_memory(self.device)

    # --- generation ----------------------------------------------------------------------------

    def run(self, image, params: GenerationParams, on_progress=None) -> GenerationResult:
        """Preprocess `image` (path, bytes or PIL image), sample and decode: nothing is written.

        `on_progress(ProgressEvent)` is called at each phase and step; when it returns True the
        run stops with GenerationCancelled.
        """
        started = time.perf_counter()

        def report(event: ProgressEvent):
            if on_progress is not None and on_progress(event):
                raise GenerationCancelled()

        report(ProgressEvent(PREPARING))
        image = normalize_mode(image) if hasattr(image, "mode") else load_image(image)
        background = background_source(image, params.background)
        model_input = preprocess_for_syncdreamer(image, params.crop_size, params.background,
                                                 rembg_model=self.rembg_model)
        with self._lock:
            if self.model is None:
                report(ProgressEvent(LOADING_MODEL))
                self.load_model()
            # The reference's uniform spacing can run one step more than asked (30 -> 31).
            report(ProgressEvent(SAMPLING, 0, len(ddim_timesteps(params.steps))))
            decoded = self._sample(model_input, params, on_progress)
        views = [model_output_to_views(sample) for sample in decoded.numpy()]
        return GenerationResult(views=views, model_input=model_input, background=background,
                                params=params, seconds=time.perf_counter() - started)

    def _sample(self, model_input, params: GenerationParams, on_progress):
        tensor = torch.from_numpy(to_model_input(model_input))[None].to(self.device)
        decoded = self._generate(tensor, params, on_progress)
        if self.dtype == torch.float16 and not bool(torch.isfinite(decoded).all()):
            # float16 ends at 65504 and something overflowed: bfloat16 has float32's range. Switch
            # for good (the metadata then says bfloat16) and run again from the same seed.
            log.warning("float16 overflowed in this generation; switching the model to bfloat16 "
                        "and generating again")
            self.model.to(dtype=torch.bfloat16)
            self.dtype = torch.bfloat16
            decoded = self._generate(tensor, params, on_progress)
        return decoded

    def _generate(self, tensor, params: GenerationParams, on_progress):
        generator = torch.Generator(device="cpu").manual_seed(params.seed)

        def callback(progress) -> bool:  # True stops ldm.generate with ldm.Cancelled
            event = ProgressEvent(progress.phase, progress.step, progress.total)
            return bool(on_progress is not None and on_progress(event))

        try:
            with torch.inference_mode():
                return ldm.generate(self.model, tensor, params.elevation, steps=params.steps,
                                    cfg_scale=params.cfg_scale, eta=DDIM_ETA,
                                    batch_view_num=self.batch_views(params.batch_views),
                                    sample_num=params.samples,
                                    generator=generator, use_posterior_mean=params.use_posterior_mean,
                                    callback=callback)
        except ldm.Cancelled:
            raise GenerationCancelled() from None
        except Exception as exc:
            if not devices.is_out_of_memory(exc):
                raise
            devices.free_cached_memory(self.device)
            raise SetupError(
                f"{self.device} ran out of memory during sampling (batch_views "
                f"{self.batch_views(params.batch_views)}, samples {params.samples}). Lower batch_views "
                f"(1 needs least), use samples 1, start with {self.switch('low_memory')}, or close other "
                "programs that use the GPU.", code="out_of_memory") from None

    def set_metadata(self, result: GenerationResult, index: int, input_file: str) -> dict:
        """What cameras.json says about the model and the generation of sample `index`."""
        params = result.params
        return {
            "warning": random_weights_warning(self.switch) if self.random_weights else None,
            "model": {
                "name": "SyncDreamer",
                "config": self.config_path.name,
                "checkpoint": None if self.checkpoint_path is None else self.checkpoint_path.name,
                "checkpoint_sha256": self.checkpoint_sha256,
                "random_weights": self.random_weights,
                "software": f"glimpse3d-syncdreamer {__version__}",
            },
            "generation": {
                "seed": params.seed,
                "steps": params.steps,
                "cfg_scale": params.cfg_scale,
                "elevation_deg": params.elevation,
                "crop_size": params.crop_size,
                "sampler": SAMPLER,
                "eta": DDIM_ETA,
                "precision": devices.dtype_name(self.dtype),
                "device": str(self.device),
                "batch_view_num": self.batch_views(params.batch_views),
                "low_memory": self.low_memory,
                "sample_index": index,
                "sample_count": params.samples,
                "input_file": input_file,
                "background": result.background,
                "use_posterior_mean": params.use_posterior_mean,
                "seconds": round(result.seconds, 2),
            },
        }

    # --- the original module's interface ---------------------------------------------------------

    def generate(self, image, elevation=30.0, cfg_scale=2.0, sample_steps=50, batch_view_num=0,
                 sample_num=1, seed=42, crop_size=200, background="auto", use_posterior_mean=False,
                 on_progress=None) -> list:
        """The views as PIL images: 16 per sample, sample after sample (16 * sample_num in all)."""
        params = _params(elevation, cfg_scale, sample_steps, batch_view_num, sample_num, seed, crop_size,
                         background, use_posterior_mean)
        result = self.run(image, params, on_progress=on_progress)
        return [view for sample in result.views for view in sample]

    def generate_and_save(self, image, output_dir, elevation=30.0, cfg_scale=2.0, sample_steps=50,
                          batch_view_num=0, sample_num=1, seed=42, crop_size=200, background="auto",
                          use_posterior_mean=False, overwrite=False, on_progress=None) -> list:
        """Generate and write the view set(s) under `output_dir`; returns the written file paths.

        One sample is written to `output_dir` itself, several to `output_dir/sample_<k>`
        (through pipeline.Pipeline, as every entry point). `on_progress(event)` returning True
        cancels.
        """
        params = _params(elevation, cfg_scale, sample_steps, batch_view_num, sample_num, seed, crop_size,
                         background, use_posterior_mean)
        request = request_for(image, output_dir, params, overwrite=overwrite)
        check_request(request, overwrite_hint="pass overwrite=True")
        pipeline = Pipeline(self)
        cancelled = []

        def progress(event):
            if on_progress is not None and on_progress(event):
                cancelled.append(True)

        folders = pipeline.run(request, progress=progress, should_cancel=lambda: bool(cancelled))
        return [str(folder / name) for folder in folders for name in SET_FILES]


def build_random_model(config_path):
    """The model of `config_path` with seeded random weights and its cameras, float32 on the CPU:
    the same on every run."""
    # a private RNG state: building must neither depend on nor disturb the caller's seeds
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_WEIGHTS_SEED)
        model = ldm.build_model(config_path, device="cpu", dtype=torch.float32)
    model.set_cameras(*(torch.as_tensor(buffer) for buffer in model_buffers()))
    return model


def _params(elevation, cfg_scale, steps, batch_views, samples, seed, crop_size, background,
            use_posterior_mean) -> GenerationParams:
    # messages name the original module's keywords, as the person wrote them
    names = {"steps": "sample_steps", "batch_views": "batch_view_num", "samples": "sample_num"}
    return parse_params({"elevation": elevation, "cfg_scale": cfg_scale, "steps": steps,
                         "batch_views": batch_views, "samples": samples, "seed": seed,
                         "crop_size": crop_size, "background": background,
                         "use_posterior_mean": use_posterior_mean},
                        spell=lambda name: python_keyword(names.get(name, name)))
