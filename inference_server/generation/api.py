"""The one-call Python API, as users of the original Glimpse3D module know it.

    from inference_server import generate_multiview
    paths = generate_multiview("cat.png", "out/", elevation=30.0)

One service (and so one loaded model) is kept between calls; `cleanup()` frees it.
"""
import threading

from ..protocol import SET_FILES
from .params import parse_params, python_keyword, python_switch
from .pipeline import Pipeline, check_request, request_for
from .progress import TerminalProgress
from .service import SyncDreamerService

_lock = threading.Lock()
_service = None
_service_options = None


def get_service(checkpoint=None, device="auto", precision="auto", random_weights=False,
                rembg_model=None, low_memory=None) -> SyncDreamerService:
    """The shared service; made anew when the options differ from the last call's."""
    global _service, _service_options
    options = (None if checkpoint is None else str(checkpoint), device, precision, bool(random_weights),
               None if rembg_model is None else str(rembg_model), low_memory)
    with _lock:
        if _service is None or options != _service_options:
            if _service is not None:
                _service.unload_model()
            _service = SyncDreamerService(checkpoint_path=checkpoint, device=device, precision=precision,
                                          random_weights=random_weights, rembg_model=rembg_model,
                                          low_memory=low_memory, switch=python_switch)
            _service_options = options
        return _service


def cleanup():
    """Unload the shared model and forget the service (frees GPU memory)."""
    global _service, _service_options
    with _lock:
        if _service is not None:
            _service.unload_model()
        _service = None
        _service_options = None


def generate_multiview(image_path, output_dir, elevation=30.0, crop_size=200, cfg_scale=2.0, seed=42,
                       steps=50, samples=1, batch_views=0, background="auto", use_posterior_mean=False,
                       checkpoint=None, device="auto", precision="auto", random_weights=False,
                       low_memory=None, overwrite=False, progress=True) -> list:
    """Generate the sixteen views of `image_path` into `output_dir`; returns the written file paths.

    One sample is written to `output_dir` itself, several to `output_dir/sample_<k>` (each a
    complete view-set folder: view_00.png .. view_15.png, input.png, grid.png, cameras.json,
    transforms.json), all at once when every set is complete. `progress` shows a bar on
    stderr. batch_views 0 lets the service choose; low_memory None turns it on for GPUs under
    8 GB. The parameters, the image and the folder are checked before the model loads.
    """
    params = parse_params({"elevation": elevation, "crop_size": crop_size, "cfg_scale": cfg_scale, "seed": seed,
                           "steps": steps, "samples": samples, "batch_views": batch_views,
                           "background": background, "use_posterior_mean": use_posterior_mean},
                          spell=python_keyword)
    request = request_for(image_path, output_dir, params, overwrite=overwrite)
    check_request(request, overwrite_hint="pass overwrite=True")
    service = get_service(checkpoint=checkpoint, device=device, precision=precision,
                          random_weights=random_weights, low_memory=low_memory)
    bar = TerminalProgress(enabled=progress)
    try:
        folders = Pipeline(service).run(request, progress=bar)
    finally:
        bar.close()
    return [str(folder / name) for folder in folders for name in SET_FILES]
