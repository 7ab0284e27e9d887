"""The preferences' Check Setup: probe the chosen interpreter for what the server needs and say
exactly what is missing, with the command that fixes it. Runs the interpreter in a subprocess
(importing torch there takes seconds), so call it from a worker thread in the UI.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .bundle_paths import server_root
from .client import GlimpseClient, ServerError
from .server_settings import NO_PYTHON_MESSAGE, NO_URL_MESSAGE, ServerSettings, child_environment

OK, WARNING, MISSING = "ok", "warning", "missing"
MIN_PYTHON = (3, 10)
# import name -> pip package name, in the order they are reported
REQUIRED_MODULES = {"torch": "torch", "numpy": "numpy<2", "PIL": "pillow", "omegaconf": "omegaconf",
                    "safetensors": "safetensors", "fastapi": "fastapi", "uvicorn": "uvicorn",
                    "pydantic": "pydantic>=2", "pydantic_settings": "pydantic-settings",
                    "cryptography": "cryptography"}
PROBE_MARK = "GLIMPSE_PROBE "

# Runs inside the chosen interpreter; prints one JSON line. Keep it Python 3.6-compatible so
# that an old interpreter still says which version it is.
PROBE_SOURCE = r"""
import importlib, importlib.util, json, sys
out = {"python": list(sys.version_info[:3]), "executable": sys.executable, "modules": {}}
for name in %(modules)r:
    try:
        module = importlib.import_module(name)
        out["modules"][name] = {"version": str(getattr(module, "__version__", "unknown"))}
    except Exception as exc:
        out["modules"][name] = {"error": "%%s: %%s" %% (type(exc).__name__, exc)}
torch = sys.modules.get("torch")
if torch is not None:
    out["cuda"] = bool(torch.cuda.is_available())
    out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if out["cuda"] else []
    mps = getattr(torch.backends, "mps", None)
    out["mps"] = bool(mps is not None and mps.is_available())
out["server_package"] = importlib.util.find_spec("inference_server") is not None
def server_lookup(call):
    try:
        return {"path": str(call())}
    except Exception as exc:
        return {"error": str(getattr(exc, "message", exc))}
if out["server_package"]:
    # The server's own search: the preference, then its default places.
    from inference_server.generation import checkpoints
    out["checkpoint"] = server_lookup(lambda: checkpoints.find_checkpoint(sys.argv[1] or None))
    def rembg_model():
        import rembg
        from inference_server.generation import segmentation
        return segmentation.find_model_file()
    out["rembg"] = server_lookup(rembg_model)
print(%(mark)r + json.dumps(out))
""" % {"modules": tuple(REQUIRED_MODULES), "mark": PROBE_MARK}


@dataclass(frozen=True)
class CheckItem:
    status: str  # OK, WARNING or MISSING
    label: str  # what was checked
    detail: str  # what was found
    fix: str = ""  # what to do (empty when nothing)


def all_ok(items) -> bool:
    return all(item.status != MISSING for item in items)


def format_report(items) -> str:
    lines = []
    for item in items:
        lines.append(f"[{item.status.upper()}] {item.label}: {item.detail}")
        if item.fix:
            lines.append(f"    fix: {item.fix}")
    return "\n".join(lines)


def _quoted(python: str) -> str:
    return f'"{python}"' if sys.platform == "win32" else shlex.quote(python)


def probe_interpreter(python: str, *, root: Path, checkpoint: str = "", timeout_s: float = 180.0) -> dict:
    """Run the probe in `python`; return its findings or raise RuntimeError saying why not."""
    env = child_environment(os.environ, root, token="")
    try:
        result = subprocess.run([python, "-c", PROBE_SOURCE, checkpoint], env=env, cwd=str(root), capture_output=True,
                                text=True, encoding="utf-8", errors="replace", timeout=timeout_s)
    except FileNotFoundError:
        raise RuntimeError(f"'{python}' does not exist") from None
    except PermissionError:
        raise RuntimeError(f"'{python}' cannot be run (permission denied); choose the interpreter "
                           "itself, e.g. .../bin/python or python.exe") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"'{python}' did not answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise RuntimeError(f"'{python}' cannot be run: {exc}") from None
    for line in result.stdout.splitlines():
        if line.startswith(PROBE_MARK):
            return json.loads(line[len(PROBE_MARK):])
    tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
    raise RuntimeError(f"'{python}' is not a working Python interpreter (exit code "
                       f"{result.returncode}): {tail or 'no output'}")


def _module_items(python: str, probe: dict) -> list:
    items = []
    for name, pip_name in REQUIRED_MODULES.items():
        found = probe["modules"].get(name, {"error": "not probed"})
        install = f"{_quoted(python)} -m pip install \"{pip_name}\""
        if "error" in found:
            fix = install
            if name == "torch":
                fix += (" (for an NVIDIA GPU, take the CUDA build's command from "
                        "https://pytorch.org/get-started/locally/)")
            items.append(CheckItem(MISSING, name, f"cannot be imported ({found['error']})", fix))
        elif name == "numpy" and found["version"].split(".")[0].isdigit() and int(found["version"].split(".")[0]) >= 2:
            items.append(CheckItem(MISSING, name, f"{found['version']} is too new (the server needs numpy<2)",
                                   install))
        else:
            items.append(CheckItem(OK, name, found["version"]))
    return items


def _device_item(settings: ServerSettings, probe: dict) -> CheckItem:
    if "cuda" not in probe:
        return CheckItem(MISSING, "device", "unknown (torch is missing)", "install torch first (see above)")
    if probe["cuda"]:
        return CheckItem(OK, "device", "CUDA: " + ", ".join(probe.get("gpus") or ["a GPU"]))
    if settings.device == "cuda":
        return CheckItem(MISSING, "device", "Device is CUDA but this torch sees no CUDA GPU",
                         "install a CUDA build of torch (https://pytorch.org/get-started/locally/) "
                         "or set Device to Auto")
    if probe.get("mps"):
        return CheckItem(OK, "device", "Apple GPU (MPS)")
    return CheckItem(WARNING, "device", "no GPU: generation runs on the CPU and takes a long time",
                     "use a machine with an NVIDIA GPU and a CUDA build of torch for real work")


def server_command(python: str, root: Path, arguments: str) -> str:
    """A command line a person can paste: the bundled server run from its folder."""
    cd = "cd /d" if sys.platform == "win32" else "cd"
    return f"{cd} {_quoted(str(root))} && {_quoted(python or 'python')} -m inference_server {arguments}"


def _checkpoint_item(settings: ServerSettings, probe: dict | None, root: Path) -> CheckItem:
    if settings.uses_random_weights:
        return CheckItem(WARNING, "checkpoint", "random weights (--random-weights): the views are noise, "
                         "for testing the pipeline only", "remove --random-weights and set Checkpoint")
    how = ("choose syncdreamer-pretrain.ckpt as 'Checkpoint' in the add-on preferences, or download "
           "it (several GB) to where the server looks with: " + server_command(settings.python, root, "download"))
    found = (probe or {}).get("checkpoint")
    if found is None:  # no interpreter to ask: check only the chosen file
        path = Path(settings.checkpoint).expanduser()
        if not settings.checkpoint:
            return CheckItem(MISSING, "checkpoint", "not set", how)
        if not path.is_file():
            return CheckItem(MISSING, "checkpoint", f"{path} does not exist", how)
        return CheckItem(OK, "checkpoint", str(path))
    if "error" in found:
        return CheckItem(MISSING, "checkpoint", found["error"], how)
    path = Path(found["path"])
    size = f" ({path.stat().st_size / 2**30:.2f} GiB)" if path.is_file() else ""
    return CheckItem(OK, "checkpoint", f"{path}{size}")


def _background_item(settings: ServerSettings, probe: dict) -> CheckItem | None:
    found = probe.get("rembg")
    if found is None or "path" in found:
        return None if found is None else CheckItem(OK, "background removal", found["path"])
    if "No module named" in found["error"]:
        fix = f"{_quoted(settings.python)} -m pip install \"rembg[cpu]\" (rembg[gpu] for CUDA)"
    else:
        fix = "follow the message, or use only images with a transparent background"
    return CheckItem(WARNING, "background removal", f"not available: {found['error']}", fix)


def _output_item(settings: ServerSettings) -> CheckItem:
    folder = Path(settings.output_dir).expanduser() if settings.output_dir else None
    if folder is None:
        return CheckItem(OK, "output folder", "the extension's user folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return CheckItem(MISSING, "output folder", f"{folder} cannot be created ({exc})",
                         "choose a folder you can write to in the add-on preferences")
    if not os.access(folder, os.W_OK):
        return CheckItem(MISSING, "output folder", f"{folder} is not writable",
                         "choose a folder you can write to in the add-on preferences")
    return CheckItem(OK, "output folder", str(folder))


def check_local(settings: ServerSettings, *, root: Path | None = None, timeout_s: float = 180.0) -> list:
    items, probe = [], None
    root = root or server_root()
    if not settings.python:
        items.append(CheckItem(MISSING, "server Python", "not set", NO_PYTHON_MESSAGE))
    else:
        try:
            probe = probe_interpreter(settings.python, root=root,
                                      checkpoint=settings.checkpoint, timeout_s=timeout_s)
        except (RuntimeError, FileNotFoundError) as exc:
            items.append(CheckItem(MISSING, "server Python", str(exc),
                                   "set 'Server Python' to a Python 3.10+ interpreter with torch "
                                   "(e.g. the python of a virtual environment)"))
        else:
            version = tuple(probe["python"])
            shown = ".".join(map(str, version))
            if version[:2] < MIN_PYTHON:
                items.append(CheckItem(MISSING, "server Python", f"{probe['executable']} is Python {shown}",
                                       "choose a Python 3.10 or newer"))
            else:
                items.append(CheckItem(OK, "server Python", f"{probe['executable']} (Python {shown})"))
            items += _module_items(settings.python, probe)
            items.append(_device_item(settings, probe))
            if not probe.get("server_package"):
                items.append(CheckItem(MISSING, "server code", "inference_server is not importable",
                                       "reinstall the extension from the Glimpse3D zip"))
            background = _background_item(settings, probe)
            if background is not None:
                items.append(background)
    items.append(_checkpoint_item(settings, probe, root))
    return items


def check_remote(settings: ServerSettings) -> list:
    if not settings.url:
        return [CheckItem(MISSING, "server URL", "not set", NO_URL_MESSAGE)]
    try:
        health = GlimpseClient(settings.url, settings.token, ca_file=settings.ca_file,
                               fingerprint=settings.fingerprint).health()
    except ServerError as exc:
        return [CheckItem(MISSING, "server", exc.message, "")]
    detail = (f"{settings.url}: version {health.get('version', '?')}, device {health.get('device', '?')}, "
              f"model {'loaded' if health.get('model_loaded') else 'not loaded'}")
    items = [CheckItem(OK, "server", detail)]
    if health.get("random_weights"):
        items.append(CheckItem(WARNING, "checkpoint", "the server runs with random weights: the views are noise",
                               "restart that server with a checkpoint"))
    return items


def check_setup(settings: ServerSettings, *, root: Path | None = None, timeout_s: float = 180.0) -> list:
    """Every check for the chosen server mode, as CheckItems (see `format_report`)."""
    items = check_local(settings, root=root, timeout_s=timeout_s) if settings.is_local else check_remote(settings)
    return items + [_output_item(settings)]
