"""Reading, checking, loading and converting SyncDreamer checkpoints.

Files are read without executing pickled code: `.ckpt`/`.pt`/`.pth` through
`torch.load(weights_only=True)` and `.safetensors` through safetensors. Loading is strict (every
key and shape must match the model), except for CLIP's six text-side leftovers, which the
reference checkpoint carries but our vision-only CLIP never builds (they are dropped on purpose).
Every failure raises `CheckpointError` with a message that says what is wrong and what to do.
"""
from __future__ import annotations

import os
import pickle
import secrets
import stat
import struct
import time
import zipfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

CHECKPOINT_FILENAME = "syncdreamer-pretrain.ckpt"
HF_REPO = "camenduru/SyncDreamer"
HF_URL = f"https://huggingface.co/{HF_REPO}/resolve/main/{CHECKPOINT_FILENAME}"
REPO_ROOT = Path(__file__).resolve().parents[1]
USER_CACHE_DIR = Path("~/.cache/glimpse3d")

# The reference keeps these tensors of CLIP's text side (only the text transformer is deleted);
# nothing reads them, so our CLIP does not build them and every load/convert drops them.
CLIP_PREFIX = "clip_image_encoder.model."
CLIP_TEXT_LEFTOVER_KEYS = tuple(CLIP_PREFIX + name for name in (
    "token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias",
    "text_projection", "logit_scale"))

FORMAT_TORCH_ZIP = "torch"
FORMAT_TORCH_LEGACY = "torch-legacy"
FORMAT_SAFETENSORS = "safetensors"

_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"  # pickled torch magic number
_NAMES_SHOWN = 5


class CheckpointError(Exception):
    """A checkpoint cannot be used; the message says why and what to do."""


@dataclass
class CheckpointInfo:
    """What a load did; `as_dict()` gives a JSON-friendly copy."""

    num_keys: int
    file_dtype: str
    dropped_keys: list[str] = field(default_factory=list)
    assigned: bool = False
    path: str | None = None
    format: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- where the file is
# Searching default locations is the server's job (inference_server.generation.checkpoints); here a path is
# given and only its absence is reported, with how to get the file.


def how_to_get_checkpoint() -> str:
    return (f"Get it with `python -m inference_server download`, or download "
            f"`{CHECKPOINT_FILENAME}` from the Hugging Face repository {HF_REPO} ({HF_URL}) "
            f"and place it at {REPO_ROOT / 'ckpt' / CHECKPOINT_FILENAME} or "
            f"{USER_CACHE_DIR.expanduser() / CHECKPOINT_FILENAME}.")


def _existing_file(path: str | os.PathLike) -> Path:
    """The path as an absolute Path; CheckpointError saying where we looked if it is no file."""
    candidate = Path(path).expanduser()
    if candidate.is_file():
        return candidate.resolve()
    what = "is a folder, not a file" if candidate.is_dir() else "does not exist"
    raise CheckpointError(f"SyncDreamer checkpoint not found: looked at {candidate.absolute()}, "
                          f"which {what}. {how_to_get_checkpoint()}")


# --------------------------------------------------------------------------- reading files


def detect_format(path: str | os.PathLike) -> str:
    """Checkpoint format from the file's first bytes (not its name); CheckpointError if none."""
    path = _existing_file(path)
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise CheckpointError(f"Cannot read checkpoint {path}: {exc.strerror}. "
                              f"Check the file's permissions.") from exc
    if size == 0:
        raise CheckpointError(f"Checkpoint {path} is empty (0 bytes): the download or copy did "
                              f"not finish. Delete it and download it again. {how_to_get_checkpoint()}")
    if head.startswith(_ZIP_MAGIC):
        return FORMAT_TORCH_ZIP
    if head.startswith(_LEGACY_TORCH_MAGIC):
        return FORMAT_TORCH_LEGACY
    if len(head) >= 9 and head[8:9] == b"{":
        header_len = struct.unpack("<Q", head[:8])[0]
        if header_len + 8 > size:
            raise CheckpointError(
                f"Checkpoint {path} is truncated: its safetensors header says {header_len} bytes "
                f"but the file has only {size}. Delete it and convert or download it again.")
        return FORMAT_SAFETENSORS
    raise CheckpointError(f"{path} is not a checkpoint: {_describe_unknown(head)} "
                          f"Expected a PyTorch .ckpt or a .safetensors file. {how_to_get_checkpoint()}")


def _describe_unknown(head: bytes) -> str:
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return ("it is a web page (HTML), probably an error or confirmation page saved instead "
                "of the file.")
    if text.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer, not the file itself (run `git lfs pull` or download directly)."
    return f"its first bytes ({head[:8].hex()}) match no known format; it may be corrupt."


def read_state_dict(path: str | os.PathLike, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file by key, on the CPU, with their stored dtypes.

    Accepts a Lightning-style dict with `state_dict` or a bare state dict (`.ckpt`/`.pt`/`.pth`),
    or a `.safetensors` file. `trust_pickle=True` allows arbitrary pickled objects in a torch file;
    only for files you trust (the converter's `--trust-pickle`).
    """
    state_dict, _ = _read(path, trust_pickle)
    return state_dict


def _read(path, trust_pickle: bool) -> tuple[dict[str, torch.Tensor], str]:
    path = _existing_file(path)
    fmt = detect_format(path)
    if fmt == FORMAT_SAFETENSORS:
        return _read_safetensors(path), fmt
    if fmt == FORMAT_TORCH_ZIP:
        _check_torch_zip(path)
    loaded = _torch_load(path, mmap=(fmt == FORMAT_TORCH_ZIP), trust_pickle=trust_pickle)
    return _extract_state_dict(loaded, path), fmt


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(f"Checkpoint {path} is truncated or corrupt ({exc}). Delete it and "
                              f"convert or download it again.") from exc


def _check_torch_zip(path: Path) -> None:
    """Tell a truncated file and a plain zip archive apart from a torch checkpoint."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"Checkpoint {path} is truncated or corrupt ({path.stat().st_size} bytes; its zip "
            f"directory cannot be read: {exc}). The download probably stopped early. Delete it "
            f"and download it again. {how_to_get_checkpoint()}") from exc
    if not any(name.endswith("data.pkl") for name in names):
        inside = ", ".join(names[:_NAMES_SHOWN]) + (" ..." if len(names) > _NAMES_SHOWN else "")
        raise CheckpointError(
            f"{path} is a zip archive, not a PyTorch checkpoint (it contains: {inside}). "
            f"Extract {CHECKPOINT_FILENAME} from it and use that file.")


def _torch_load(path: Path, mmap: bool, trust_pickle: bool):
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=mmap)
    except pickle.UnpicklingError as exc:
        if trust_pickle:
            raise CheckpointError(f"Checkpoint {path} is corrupt: it cannot be unpickled ({exc}). "
                                  f"Download it again.") from exc
        found = _unsupported_global(str(exc))
        raise CheckpointError(
            f"Checkpoint {path} holds pickled Python objects besides tensors"
            f"{f' ({found})' if found else ''}, e.g. training state saved by PyTorch Lightning. "
            f"Loading those could run code from the file, so it was refused. If you trust the "
            f"file, convert it once to a safe .safetensors file and use that instead:\n"
            f"  python -m inference_server convert {path} "
            f"{path.with_suffix('.safetensors')} --trust-pickle") from exc
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"Checkpoint {path} is truncated or corrupt ({_first_line(exc)}). "
                              f"Delete it and download it again. {how_to_get_checkpoint()}") from exc


def _unsupported_global(message: str) -> str:
    """The object type named in torch's weights-only refusal, if it names one."""
    for line in message.splitlines():
        if "Unsupported global" in line or "Unsupported class" in line:
            return line.strip().rstrip(".")
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _extract_state_dict(loaded, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        state_dict = loaded["state_dict"]
    elif isinstance(loaded, dict) and loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        state_dict = loaded
    else:
        top = list(loaded)[:_NAMES_SHOWN] if isinstance(loaded, dict) else type(loaded).__name__
        raise CheckpointError(
            f"{path} holds no model weights that we recognise: expected a dict with 'state_dict' "
            f"or a dict of tensors, found {top}. Is this the SyncDreamer checkpoint "
            f"({CHECKPOINT_FILENAME})?")
    not_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: the state dict holds non-tensor entries "
                              f"({', '.join(map(str, not_tensors[:_NAMES_SHOWN]))}); it is not a "
                              f"model checkpoint we can load.")
    return dict(state_dict)


# --------------------------------------------------------------------------- loading into a model


def drop_clip_text_leftovers(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """State dict without CLIP's six unused text-side tensors, and the keys that were dropped."""
    dropped = [k for k in CLIP_TEXT_LEFTOVER_KEYS if k in state_dict]
    kept = {k: v for k, v in state_dict.items() if k not in CLIP_TEXT_LEFTOVER_KEYS}
    return kept, dropped


def describe_dtypes(state_dict: dict[str, torch.Tensor]) -> str:
    """"float16", or e.g. "float16 (1612), float32 (6)" when the file mixes dtypes."""
    counts = Counter(str(t.dtype).removeprefix("torch.") for t in state_dict.values())
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{name} ({n})" for name, n in counts.most_common())


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, torch.Tensor],
                           assign: bool | None = None, device: str | torch.device | None = None) -> CheckpointInfo:
    """Fill `model` from `state_dict`: every key and shape must match, except the dropped leftovers.

    Floating tensors are cast to the model's dtypes. `assign` (default: whenever the model has
    tensors on the meta device) makes the file's tensors the model's own instead of copying them,
    so a model built with device="meta" is filled without allocating twice. With `assign`,
    `device` moves each tensor there before its cast (a GPU casts far faster than the CPU).
    """
    expected = model.state_dict()
    dropped = [k for k in CLIP_TEXT_LEFTOVER_KEYS if k in state_dict and k not in expected]
    state_dict = {k: v for k, v in state_dict.items() if k not in dropped}
    _check_keys(expected, state_dict)
    _check_shapes(expected, state_dict)
    if assign is None:
        assign = any(t.is_meta for t in expected.values()) or _has_meta_tensors(model)
    info = CheckpointInfo(num_keys=len(state_dict) + len(dropped), file_dtype=describe_dtypes(state_dict),
                          dropped_keys=dropped, assigned=assign)
    if assign:
        cast = {k: _cast_like(v if device is None else v.to(device), expected[k]) for k, v in state_dict.items()}
        model.load_state_dict(cast, strict=True, assign=True)
        _materialise_nonpersistent(model)
    else:
        model.load_state_dict(state_dict, strict=True)  # copy_ casts to the parameter's dtype
    return info


def _check_keys(expected: dict, given: dict) -> None:
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    if not missing and not unexpected:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(expected)} keys are missing from the "
                     f"file (first: {', '.join(missing[:_NAMES_SHOWN])})")
    if unexpected:
        parts.append(f"{len(unexpected)} keys in the file are not in the model "
                     f"(first: {', '.join(unexpected[:_NAMES_SHOWN])})")
    raise CheckpointError(
        "The checkpoint does not fit this model: " + "; ".join(parts) + ". It is probably the "
        f"checkpoint of another model, or the model config does not match it (the official "
        f"{CHECKPOINT_FILENAME} needs configs/syncdreamer.yaml).")


def _check_shapes(expected: dict, given: dict) -> None:
    wrong = [(k, tuple(given[k].shape), tuple(expected[k].shape))
             for k in expected if tuple(given[k].shape) != tuple(expected[k].shape)]
    if not wrong:
        return
    shown = "; ".join(f"{k}: file {f}, model {m}" for k, f, m in wrong[:_NAMES_SHOWN])
    raise CheckpointError(
        f"The checkpoint has the right keys but {len(wrong)} tensors have the wrong shape "
        f"({shown}). The model config and the checkpoint describe different model sizes; use the "
        f"config that belongs to the checkpoint (configs/syncdreamer.yaml for {CHECKPOINT_FILENAME}).")


def _cast_like(tensor: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if tensor.is_floating_point() and target.is_floating_point() and tensor.dtype != target.dtype:
        return tensor.to(target.dtype)
    return tensor


def _has_meta_tensors(model: nn.Module) -> bool:
    return any(t.is_meta for t in _all_tensors(model))


def _all_tensors(model: nn.Module):
    yield from (p for _, p in model.named_parameters())
    yield from (b for _, b in model.named_buffers())


def _materialise_nonpersistent(model: nn.Module) -> None:
    """Recreate buffers that no file stores (modules offer `reset_nonpersistent_buffers(device)`)."""
    device = next((t.device for t in _all_tensors(model) if not t.is_meta), torch.device("cpu"))
    for module in model.modules():
        reset = getattr(module, "reset_nonpersistent_buffers", None)
        if callable(reset) and any(b.is_meta for b in module.buffers(recurse=False)):
            reset(device)
    left = [name for name, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(
            f"After loading, {len(left)} model tensors are still unset (first: "
            f"{', '.join(left[:_NAMES_SHOWN])}). This is a bug in the model code: those modules "
            f"need a reset_nonpersistent_buffers(device) method. Build the model on a real "
            f"device instead of 'meta' to work around it.")


def load_checkpoint(model: nn.Module, path: str | os.PathLike, assign: bool | None = None,
                    device: str | torch.device | None = None) -> CheckpointInfo:
    """Read a `.ckpt`/`.pt`/`.safetensors` file and load it strictly into `model`; a model built
    on "meta" is filled straight onto `device` (default: the CPU)."""
    start = time.perf_counter()
    found = _existing_file(path)
    state_dict, fmt = _read(found, trust_pickle=False)
    try:
        info = load_state_dict_strict(model, state_dict, assign=assign, device=device)
    except CheckpointError as exc:
        raise CheckpointError(f"{found}: {exc}") from exc
    info.path = str(found)
    info.format = fmt
    info.seconds = time.perf_counter() - start
    return info


# --------------------------------------------------------------------------- converting


def convert_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, half: bool = False,
                       trust_pickle: bool = False) -> Path:
    """Write `src` as a `.safetensors` file at `dst` (fast, memory-mapped and safe to load later).

    CLIP's six unused text-side leftovers are dropped (the loader drops them anyway). `half`
    stores the module weights in float16; top-level buffers (keys without a dot: the noise schedule
    and the cameras) keep their precision. `trust_pickle=True` lets a trusted Lightning checkpoint
    with pickled non-tensor objects be read. The file appears at `dst` only once complete.
    """
    src_path = _existing_file(src)
    dst_path = Path(dst).expanduser().absolute()
    if dst_path.suffix != ".safetensors":
        raise CheckpointError(f"Convert writes .safetensors files; name the output "
                              f"{dst_path.with_suffix('.safetensors')} instead of {dst_path}.")
    if dst_path.exists() and dst_path.resolve() == src_path:
        raise CheckpointError(f"Converting {src_path} onto itself; choose another output path.")
    state_dict, fmt = _read(src_path, trust_pickle=trust_pickle)
    state_dict, dropped = drop_clip_text_leftovers(state_dict)
    metadata = {
        "source": src_path.name,
        "source_format": fmt,
        "dropped_keys": ",".join(dropped),
    }
    return save_safetensors(state_dict, dst_path, half=half, metadata=metadata,
                            mode=stat.S_IMODE(src_path.stat().st_mode))


def save_safetensors(state_dict: dict[str, torch.Tensor], dst: str | os.PathLike, half: bool = False,
                     metadata: dict[str, str] | None = None, mode: int | None = None) -> Path:
    """Write a state dict as a `.safetensors` file that appears at `dst` only once complete.

    `half` stores the module weights in float16 (top-level buffers keep their precision);
    `mode` sets the file's permissions (safetensors writes owner-only files)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    dst_path = Path(dst).expanduser().absolute()
    tensors = _prepare_for_safetensors(state_dict, half)
    metadata = {"format": "pt", "precision": "float16" if half else "as-source",
                "converted_by": "glimpse3d ldm.checkpoint", **(metadata or {})}
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    partial = dst_path.with_name(f".{dst_path.name}.partial-{secrets.token_hex(4)}")
    try:
        save_file(tensors, str(partial), metadata=metadata)
        if mode is not None:
            os.chmod(partial, mode)
        with safe_open(str(partial), framework="pt") as written:
            if len(list(written.keys())) != len(tensors):
                raise CheckpointError(f"Writing {dst_path} produced an incomplete file.")
        os.replace(partial, dst_path)
    except OSError as exc:
        raise CheckpointError(f"Cannot write {dst_path}: {exc.strerror or exc}. Check free disk "
                              f"space (about {_bytes(tensors) / 1e9:.1f} GB needed) and "
                              f"permissions.") from exc
    finally:
        partial.unlink(missing_ok=True)
    return dst_path


def _prepare_for_safetensors(state_dict: dict[str, torch.Tensor], half: bool) -> dict[str, torch.Tensor]:
    """Contiguous tensors that share no memory (safetensors requires both), optionally halved."""
    seen_storages: set[int] = set()
    prepared = {}
    for key, tensor in state_dict.items():
        if half and tensor.is_floating_point() and "." in key:
            tensor = tensor.to(torch.float16)
        tensor = tensor.contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages and tensor.numel() > 0:
            tensor = tensor.clone()
        seen_storages.add(tensor.untyped_storage().data_ptr())
        prepared[key] = tensor
    return prepared


def _bytes(tensors: dict[str, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())
