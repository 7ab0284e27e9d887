"""Choosing the device and the precision, and reading GPU memory (imports torch)."""
import torch

from .errors import SetupError

PRECISIONS = ("auto", "float32", "float16", "bfloat16")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(spec: str = "auto") -> torch.device:
    """auto: the first CUDA GPU, else Apple's MPS, else the CPU. Otherwise cpu, cuda[:N] or mps."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise SetupError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N or mps",
                         code="bad_device") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "this torch has no CUDA support (a CPU-only build)" if torch.version.cuda is None \
                else "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)"
            raise SetupError(f"device {spec!r} was asked for, but {built}. Use --device cpu, or install "
                             "a CUDA build of torch (see the README).", code="no_gpu")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise SetupError(f"device {spec!r} does not exist: this machine has "
                             f"{torch.cuda.device_count()} CUDA GPU(s), numbered from 0", code="no_gpu")
        return torch.device("cuda", index)
    if device.type == "mps" and not _mps_available():
        raise SetupError("device 'mps' was asked for, but Apple's Metal backend is not available here; "
                         "use --device cpu", code="no_gpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise SetupError(f"device type {device.type!r} is not supported; use cpu, cuda or mps",
                         code="bad_device")
    return device


def resolve_precision(spec: str, device: torch.device) -> torch.dtype:
    """auto: float16 on CUDA (about eight times closer to float32 than bfloat16, as fast on tensor
    cores; the service falls back to bfloat16 if it overflows); float32 elsewhere."""
    spec = (spec or "auto").strip().lower()
    if spec not in PRECISIONS:
        raise SetupError(f"unknown precision {spec!r}; use one of {', '.join(PRECISIONS)}", code="bad_precision")
    if spec != "auto":
        return _DTYPES[spec]
    if device.type == "cuda":
        return torch.float16
    return torch.float32


# Below this much GPU memory the low-memory mode is on unless asked otherwise (the fast path
# with sixteen views per call wants about 6 GB).
LOW_MEMORY_BELOW_GIB = 8.0


def resolve_low_memory(spec, device: torch.device) -> bool:
    """None = auto: on for a CUDA GPU with less than LOW_MEMORY_BELOW_GIB of memory; else as given."""
    if spec is not None:
        return bool(spec)
    if device.type != "cuda":
        return False
    return torch.cuda.get_device_properties(device).total_memory < LOW_MEMORY_BELOW_GIB * 1024 ** 3


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def configure_math(device: torch.device, dtype: torch.dtype):
    """float32 on CUDA means float32: TF32 matmuls would change the results noticeably."""
    if device.type == "cuda" and dtype == torch.float32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


def gpu_memory(device: torch.device):
    """Memory of the CUDA GPU in MiB (None on other devices)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info(device)
    mib = 1024 * 1024
    return {
        "device_name": torch.cuda.get_device_name(device),
        "total_mb": round(total / mib),
        "free_mb": round(free / mib),
        "allocated_mb": round(torch.cuda.memory_allocated(device) / mib),
        "reserved_mb": round(torch.cuda.memory_reserved(device) / mib),
    }


def free_cached_memory(device: torch.device):
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
