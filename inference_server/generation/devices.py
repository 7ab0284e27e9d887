"""Choosing the device and the precision, and reading GPU memory (imports torch)."""
import torch

from ..errors import SetupError

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
                             "a CUDA build of torch (docs/installation.md).", code="no_gpu")
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
    cores; the service falls back to bfloat16 if it overflows); float32 elsewhere. On Apple's GPU
    (MPS) too: the overflow fallback needs bfloat16, which MPS has only from macOS 14, and float32
    keeps the reference's numerics; float16 is a choice (--precision float16) for small Macs."""
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
# Apple's GPU shares the Mac's memory with macOS and Blender; torch says how much it should use
# (the recommended working set, about two thirds of it). The float32 default needs about 6.8 GB
# (tools/model_tools/memory_estimate.py: 5.4 GB of weights, 1.4 GB for a 16-view step), 5.6 GB in low-memory mode;
# below 12 GiB of working set (Macs with 16 GB or less) the low-memory mode is on.
MPS_LOW_MEMORY_BELOW_GIB = 12.0


def resolve_low_memory(spec, device: torch.device) -> bool:
    """None = auto: on for a CUDA GPU with less than LOW_MEMORY_BELOW_GIB of memory, and for
    Apple's GPU with a working set under MPS_LOW_MEMORY_BELOW_GIB; else as given."""
    if spec is not None:
        return bool(spec)
    if device.type == "mps":
        working_set = _mps_working_set()
        return working_set is not None and working_set < MPS_LOW_MEMORY_BELOW_GIB * 1024 ** 3
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
    """Memory of the CUDA GPU or of Apple's GPU (its working set) in MiB; None on the CPU."""
    mib = 1024 * 1024
    if device.type == "mps":
        working_set = _mps_working_set()
        if working_set is None:
            return None
        driver = torch.mps.driver_allocated_memory()
        return {"device_name": "Apple GPU (MPS)", "total_mb": round(working_set / mib),
                "free_mb": round(max(working_set - driver, 0) / mib),
                "allocated_mb": round(torch.mps.current_allocated_memory() / mib), "reserved_mb": round(driver / mib)}
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info(device)
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


def _mps_working_set():
    """Bytes torch recommends Apple's GPU use (None without MPS or in torch before 2.5)."""
    mps = getattr(torch, "mps", None)
    if not _mps_available() or not hasattr(mps, "recommended_max_memory"):
        return None
    return mps.recommended_max_memory()


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
