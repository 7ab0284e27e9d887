"""Which torch build fits this machine, for Install Server. No bpy.

`choose_torch_build(machine, torch_pin)` is a plain function of a `MachineInfo` (tested for every
platform and driver case); `detect_machine()` fills one in from the operating system (nvidia-smi,
the ROCm kernel driver, platform). The package indexes are PyTorch's own
(https://download.pytorch.org/whl/<build>); check the tables below when the torch pin moves.
"""
from __future__ import annotations

import glob
import os
import platform
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass

TORCH_INDEX = "https://download.pytorch.org/whl/"

# CUDA builds published for the pinned torch, newest first: (minimum CUDA version the driver
# must support, build name). A driver runs every CUDA build up to its own CUDA version.
CUDA_BUILDS = (((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 6), "cu126"))
# Drivers older than the oldest build above still run the last torch made for CUDA 11.8.
LEGACY_CUDA = ((11, 8), "cu118", "torch==2.7.1")
ROCM_BUILD = "rocm6.4"  # Linux only; the wheel carries the ROCm runtime, the kernel driver suffices
# Intel Macs: the last torch published for macOS x86_64.
MAC_X86_TORCH = "torch==2.2.2"

CUDA, ROCM, MPS, CPU = "cuda", "rocm", "mps", "cpu"


@dataclass(frozen=True)
class MachineInfo:
    system: str  # platform.system(): "Linux", "Darwin", "Windows"
    arch: str  # platform.machine(), lower case: "x86_64", "amd64", "arm64", "aarch64"
    nvidia_cuda: tuple | None = None  # the CUDA version the NVIDIA driver supports, e.g. (12, 4)
    nvidia_driver: str = ""  # e.g. "550.54.14"
    amd_gpu: bool = False  # an AMD GPU with the amdgpu kernel driver (/dev/kfd) on Linux


@dataclass(frozen=True)
class TorchBuild:
    name: str  # "cu128", "rocm6.4", "cpu", "default"
    device: str  # what the server will run on: CUDA, ROCM (torch calls it cuda), MPS or CPU
    requirement: str  # the pip requirement for torch, e.g. "torch==2.13.0"
    index_url: str | None  # None: the package index pip is configured with (PyPI by default)
    reason: str  # one sentence for the log and the preferences: why this build

    @property
    def label(self) -> str:
        return {CUDA: f"CUDA ({self.name})", ROCM: f"AMD ROCm ({self.name})", MPS: "Apple GPU (MPS)",
                CPU: "CPU"}[self.device]


def choose_torch_build(machine: MachineInfo, torch_pin: str, *, force_cpu: bool = False) -> TorchBuild:
    """The torch build for `machine`. `torch_pin` is the requirement of requirements-server.txt
    (e.g. "torch==2.13.0"); `force_cpu` is the user's choice of the CPU build."""
    system, arch = machine.system, machine.arch.lower()
    if system == "Darwin":
        if arch in ("arm64", "aarch64"):
            return TorchBuild("default", CPU if force_cpu else MPS, torch_pin, None,
                              "Apple silicon: the standard macOS build, which runs on the Apple GPU (MPS)")
        return TorchBuild("default", CPU, MAC_X86_TORCH, None,
                          "Intel Mac: torch 2.2.2 is the last build for macOS x86_64; it runs on the CPU")
    cpu = _cpu_build(system, arch, torch_pin)
    if force_cpu:
        return TorchBuild(cpu.name, CPU, cpu.requirement, cpu.index_url, "the CPU build, as chosen")
    if machine.nvidia_cuda is not None:
        return _cuda_build(machine, torch_pin, cpu)
    if machine.amd_gpu and system == "Linux":
        return TorchBuild(ROCM_BUILD, ROCM, torch_pin, TORCH_INDEX + ROCM_BUILD,
                          "an AMD GPU with the ROCm kernel driver")
    if machine.amd_gpu:
        return TorchBuild(cpu.name, CPU, cpu.requirement, cpu.index_url,
                          "AMD GPUs are supported by torch on Linux only (ROCm); on this system: the CPU")
    return cpu


def _cpu_build(system: str, arch: str, torch_pin: str) -> TorchBuild:
    if system in ("Linux", "Windows") and arch in ("x86_64", "amd64"):
        # PyPI's Linux torch carries CUDA libraries (gigabytes) that a CPU never uses.
        return TorchBuild("cpu", CPU, torch_pin, TORCH_INDEX + "cpu", "no NVIDIA or AMD GPU found: the CPU build")
    return TorchBuild("default", CPU, torch_pin, None, "no supported GPU found: the standard build, on the CPU")


def _cuda_build(machine: MachineInfo, torch_pin: str, cpu: TorchBuild) -> TorchBuild:
    have = machine.nvidia_cuda
    shown = ".".join(map(str, have))
    for needs, name in CUDA_BUILDS:
        if have >= needs:
            return TorchBuild(name, CUDA, torch_pin, TORCH_INDEX + name,
                              f"NVIDIA driver {machine.nvidia_driver or '?'} supports CUDA {shown}")
    needs, name, requirement = LEGACY_CUDA
    if have >= needs:
        return TorchBuild(name, CUDA, requirement, TORCH_INDEX + name,
                          f"NVIDIA driver {machine.nvidia_driver or '?'} supports only CUDA {shown}: torch "
                          f"{requirement.split('==')[1]}, the last build for CUDA 11.8. Update the driver and "
                          "run Install Server again for the current torch")
    return TorchBuild(cpu.name, CPU, cpu.requirement, cpu.index_url,
                      f"NVIDIA driver {machine.nvidia_driver or '?'} supports only CUDA {shown}, too old for "
                      "any torch build: the CPU build. Update the driver and run Install Server again")


# -- what this machine has --------------------------------------------------------------------
_SMI_CUDA = re.compile(r"CUDA Version:\s*(\d+)\.(\d+)")
_SMI_DRIVER = re.compile(r"Driver Version:\s*([\d.]+)")


def parse_nvidia_smi(output: str) -> tuple:
    """(CUDA version tuple or None, driver version or "") from `nvidia-smi`'s header."""
    cuda, driver = _SMI_CUDA.search(output), _SMI_DRIVER.search(output)
    return ((int(cuda[1]), int(cuda[2])) if cuda else None), (driver[1] if driver else "")


def _nvidia_smi() -> str:
    candidates = [shutil.which("nvidia-smi")]
    if platform.system() == "Windows":  # often not on PATH there
        candidates.append(os.path.expandvars(r"%SystemRoot%\System32\nvidia-smi.exe"))
    for exe in filter(None, candidates):
        try:
            return subprocess.run([exe], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
    return ""


def _linux_amd_gpu() -> bool:
    """The amdgpu compute driver (/dev/kfd) and a display device with AMD's PCI vendor id."""
    if not os.path.exists("/dev/kfd"):
        return False
    for vendor in glob.glob("/sys/class/drm/card*/device/vendor"):
        try:
            with open(vendor, encoding="ascii") as fh:
                if fh.read().strip() == "0x1002":
                    return True
        except OSError:
            continue
    return False


def detect_machine() -> MachineInfo:
    system = platform.system()
    cuda, driver = parse_nvidia_smi(_nvidia_smi()) if system != "Darwin" else (None, "")
    return MachineInfo(system=system, arch=platform.machine().lower(), nvidia_cuda=cuda, nvidia_driver=driver,
                       amd_gpu=system == "Linux" and _linux_amd_gpu())


def index_unreachable(index_url: str, timeout_s: float = 10.0) -> str:
    """Why `index_url` cannot be reached ("" when it answers): asked before pip, which would
    retry for minutes and then say only that no torch was found."""
    try:
        with urllib.request.urlopen(index_url.rstrip("/") + "/torch/", timeout=timeout_s):
            return ""
    except urllib.error.HTTPError as exc:
        return f"it answered {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))
