"""Install Server: make the server's Python environment in the user data folder, as a sequence
of steps driven by the output of the commands they run. No bpy.

Steps: create the environment (or keep a working one: a repair), check that the torch build's
package index answers, install torch, install requirements-server.txt with constraints.txt (the
files the extension ships), verify the imports. The environment is marked usable (a marker file
written last) only when every step succeeded; a new run removes the mark first, so a cancelled or
failed run never leaves an environment that looks complete.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .base_python import find_base_python
from .pip_progress import PipProgress
from .setup_task import Progress
from .setup_check import probe_interpreter
from .streamed_process import Cancelled, clean_environment, run_streamed
from .torch_build import CPU, TorchBuild, choose_torch_build, detect_machine, index_unreachable
from .user_data import env_python

MARKER = "glimpse-env.json"  # written last: the environment is complete
REQUIREMENTS_FILE = "requirements-server.txt"
CONSTRAINTS_FILE = "constraints.txt"
PIP_ARGS = ("-m", "pip", "install", "--no-input", "--disable-pip-version-check")
RAW_PROGRESS_PIP = (24, 1)  # the first pip that prints download progress as lines (--progress-bar raw)

# Phases, in order, with the share of the whole install (percent) at which each ends.
CREATE, CHECK_INDEX, TORCH, REQUIREMENTS, VERIFY = ("Creating the environment", "Checking the package index",
                                                   "Installing torch", "Installing the server's packages",
                                                   "Checking the environment")
PHASE_END = {CREATE: 8.0, CHECK_INDEX: 10.0, TORCH: 60.0, REQUIREMENTS: 92.0, VERIFY: 100.0}
PHASE_START = dict(zip(PHASE_END, (0.0, *PHASE_END.values())))


class InstallError(Exception):
    """A step failed; the message says what happened and what to do. `offer_cpu`: the GPU build's
    index cannot be reached, and the CPU build is the way forward without it."""

    def __init__(self, message: str, *, offer_cpu: bool = False):
        super().__init__(message)
        self.offer_cpu = offer_cpu


@dataclass(frozen=True)
class InstallResult:
    python: str  # the environment's interpreter: Server Python
    build: TorchBuild
    repaired: bool  # an existing environment was kept and brought up to date
    torch_version: str
    seconds: float


def read_marker(env_dir: Path) -> dict | None:
    """The marker of a complete environment, or None (never finished, cancelled, or none)."""
    try:
        marker = json.loads((Path(env_dir) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if env_python(Path(env_dir)).is_file() else None


def remove_env(env_dir: Path) -> None:
    """Delete the environment (the Remove button); refuses a folder that is no virtual environment."""
    env_dir = Path(env_dir)
    if not env_dir.exists():
        return
    if not (env_dir / "pyvenv.cfg").is_file():
        raise InstallError(f"{env_dir} is not a Python environment made by Install Server; not deleting it.")
    shutil.rmtree(env_dir)


def split_requirements(text: str) -> tuple:
    """(the lines without torch, torch's line): torch gets a step and an index of its own."""
    kept, torch_line = [], ""
    for line in text.splitlines():
        bare = line.split("#", 1)[0].strip()
        if re.match(r"torch\b(?![-_.\w])", bare):
            torch_line = bare
        else:
            kept.append(line)
    return "\n".join(kept) + "\n", torch_line


class EnvInstaller:
    """One run of Install Server. `run()` blocks; call it on a worker thread in the UI.
    `on_progress(Progress)` is called from that thread; `cancel` (an Event) stops it."""

    def __init__(self, env_dir: Path, build: TorchBuild, server_root: Path, log_path: Path, *,
                 on_progress=lambda progress: None, cancel: threading.Event | None = None,
                 binary_path: str = "", environ=None):
        self.env_dir = Path(env_dir)
        self.build = build
        self.server_root = Path(server_root)
        self.log_path = Path(log_path)
        self.on_progress = on_progress
        self.cancel = cancel or threading.Event()
        self.binary_path = binary_path
        self.environ = clean_environment(os.environ if environ is None else environ)
        self.progress = Progress()
        self.progress_bar = "off"  # pip's --progress-bar: "raw" once pip is new enough
        self.python = env_python(self.env_dir)
        self._log = None

    def run(self) -> InstallResult:
        """Every step in order; raises InstallError (what to do) or Cancelled."""
        started = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as self._log:
            self._note(f"== Install Server {time.strftime('%Y-%m-%d %H:%M:%S')}: {self.env_dir}, torch build "
                       f"{self.build.name} ({self.build.reason})")
            previous = read_marker(self.env_dir) or {}
            try:
                (self.env_dir / MARKER).unlink(missing_ok=True)  # not usable until this run completes
                repaired = self._create_env()
                self._update_pip()
                index_url = self._check_index()
                self._pip(self.torch_argv(index_url, previous.get("torch_build")), TORCH)
                self._install_requirements()
                torch_version = self._verify()
            except Cancelled:
                self._note("== cancelled; the environment is not marked usable")
                raise
            except InstallError as exc:
                self._note(f"== failed: {exc}")
                raise
            self._write_marker(torch_version)
            seconds = time.monotonic() - started
            self._note(f"== done in {seconds:.0f} s: {self.python}")
        self._report(VERIFY, "", 1.0, "Server environment ready")
        return InstallResult(str(self.python), self.build, repaired, torch_version, seconds)

    # -- the steps ----------------------------------------------------------------------------
    def _create_env(self) -> bool:
        """Keep an environment whose Python runs (repair); else make a new one. True: kept."""
        self._report(CREATE, "", 0.0, "Looking for an existing environment")
        if self.python.is_file() and self._runs(self.python):
            self._note(f"keeping the existing environment in {self.env_dir} (repair)")
            self._report(CREATE, "", 1.0, "Repairing the existing environment")
            return True
        if self.env_dir.exists():
            self._note(f"{self.env_dir} exists but its Python does not run: making it again")
            shutil.rmtree(self.env_dir)
        try:
            base = find_base_python(binary_path=self.binary_path, environ=self.environ)
        except LookupError as exc:
            raise InstallError(str(exc)) from None
        self._note(f"creating the environment with {base.kind} {base.path} (Python {base.version})")
        self._report(CREATE, "", 0.1, f"Creating the environment with Python {base.version}")
        self._run(base.create_env_argv(self.env_dir), "creating the environment")
        return False

    def _update_pip(self) -> None:
        """A pip that reports download progress as lines; the one the environment has otherwise."""
        self._report(CREATE, "pip", 0.6, "Updating pip")
        try:
            self._run([self.python, *PIP_ARGS, "--progress-bar", "off", f"pip>={'.'.join(map(str, RAW_PROGRESS_PIP))}"],
                      "updating pip")
        except InstallError as exc:  # not needed to go on: only the progress display is coarser
            self._note(f"pip was not updated ({exc}); going on with the one there")
        self.progress_bar = "raw" if self._pip_version() >= RAW_PROGRESS_PIP else "off"
        self._report(CREATE, "pip", 1.0, "Environment ready for the packages")

    def _pip_version(self) -> tuple:
        try:
            out = subprocess.run([str(self.python), "-m", "pip", "--version"], capture_output=True, text=True,
                                 env=self.environ, timeout=120).stdout
        except (OSError, subprocess.TimeoutExpired):
            return (0,)
        match = re.match(r"pip (\d+)\.(\d+)", out)
        return (int(match[1]), int(match[2])) if match else (0,)

    def _check_index(self) -> str | None:
        url = self.build.index_url
        if url is None:
            return None
        self._report(CHECK_INDEX, "", 0.0, f"Checking {url}")
        why = index_unreachable(url)
        if not why:
            return url
        if self.build.device == CPU:
            self._note(f"{url} cannot be reached ({why}); taking torch from the configured package index")
            return None
        raise InstallError(
            f"The package index for the {self.build.label} build of torch, {url}, cannot be reached ({why}). "
            "Check the internet connection (or proxy) and press Install Server again, or set Torch Build "
            "to CPU to install the CPU build (slow generation) from your package index.", offer_cpu=True)

    def torch_argv(self, index_url: str | None, previous_build: str | None) -> list:
        """pip's command for torch. Another build than the last complete install's (the CPU build
        chosen instead of CUDA, a newer driver) has the same version number, which pip would take
        as satisfied: then torch is installed again."""
        argv = [self.python, *PIP_ARGS, "--progress-bar", self.progress_bar, self.build.requirement]
        if index_url:
            argv += ["--index-url", index_url]
        if previous_build and previous_build != self.build.name:
            self._note(f"switching torch from the {previous_build} build to {self.build.name}")
            argv += ["--force-reinstall", "--no-deps"]
        return argv

    def _install_requirements(self) -> None:
        requirements, _ = split_requirements(self._shipped(REQUIREMENTS_FILE).read_text(encoding="utf-8"))
        constraints, _ = split_requirements(self._shipped(CONSTRAINTS_FILE).read_text(encoding="utf-8"))
        # torch is installed already, from its own index: it is no longer a constraint.
        (self.env_dir / "glimpse-requirements.txt").write_text(requirements, encoding="utf-8")
        (self.env_dir / "glimpse-constraints.txt").write_text(constraints, encoding="utf-8")
        self._pip([self.python, *PIP_ARGS, "--progress-bar", self.progress_bar, "-r",
                   self.env_dir / "glimpse-requirements.txt",
                   "-c", self.env_dir / "glimpse-constraints.txt"], REQUIREMENTS)

    def _verify(self) -> str:
        self._report(VERIFY, "", 0.0, "Importing torch and the server's packages")
        try:
            probe = probe_interpreter(str(self.python), root=self.server_root)
        except RuntimeError as exc:
            raise InstallError(f"The new environment does not run: {exc}. See the log {self.log_path}.") from None
        self._note("probe: " + json.dumps(probe))
        broken = {name: found["error"] for name, found in probe["modules"].items() if "error" in found}
        if broken:
            raise InstallError("The environment was installed but cannot import "
                               + ", ".join(f"{name} ({error})" for name, error in broken.items())
                               + f". See the log {self.log_path}; press Install Server again to repair it.")
        return probe["modules"]["torch"]["version"]

    def _write_marker(self, torch_version: str) -> None:
        marker = {"complete": True, "torch_build": self.build.name, "device": self.build.device,
                  "torch": torch_version, "python": str(self.python),
                  "installed": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (self.env_dir / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")

    # -- helpers ------------------------------------------------------------------------------
    def _shipped(self, name: str) -> Path:
        path = self.server_root / name
        if not path.is_file():
            raise InstallError(f"{path} is missing: the extension was built without it. Reinstall the "
                               "extension from the Glimpse3D zip.")
        return path

    def _pip(self, argv, phase: str) -> None:
        pip = PipProgress()

        def on_line(line: str) -> None:
            if pip.feed(line):
                self._report(phase, pip.package, pip.fraction, pip.detail or phase)

        self._report(phase, "", 0.0, phase)
        self._run(argv, phase.lower(), on_line=on_line)
        self._note(f"({pip.downloaded} downloaded, {pip.satisfied} already installed)")

    def _run(self, argv, what: str, on_line=None) -> None:
        """Run one command to its end; InstallError with its last error lines when it fails."""
        tail = []

        def collect(line: str) -> None:
            tail.append(line)
            del tail[:-8]
            if on_line is not None:
                on_line(line)

        try:
            code = run_streamed(argv, on_line=collect, cancel=self.cancel, log=self._log, env=self.environ)
        except FileNotFoundError as exc:
            raise InstallError(f"{what} failed: {exc}") from None
        if code != 0:
            errors = [line for line in tail if line.startswith("ERROR")] or tail[-3:]
            raise InstallError(f"{what[0].upper() + what[1:]} failed (exit code {code}): "
                               + " ".join(e.strip() for e in errors)
                               + f". The whole output is in {self.log_path}; press Install Server to try again.")

    def _runs(self, python: Path) -> bool:
        try:
            return subprocess.run([str(python), "-c", "pass"], env=self.environ, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _report(self, phase: str, package: str, fraction: float, message: str) -> None:
        start = PHASE_START[phase]
        percent = start + (PHASE_END[phase] - start) * min(max(fraction, 0.0), 1.0)
        self.progress = Progress(phase, package, max(percent, self.progress.percent), message)
        self.on_progress(self.progress)

    def _note(self, text: str) -> None:
        self._log.write(text + "\n")
        self._log.flush()


def install_server(server_root: Path, env_dir: Path, log_path: Path, *, cancel: threading.Event,
                   on_progress=lambda progress: None, force_cpu: bool = False, binary_path: str = "",
                   machine=None) -> InstallResult:
    """Install Server as the button runs it: the torch build for this machine (or the CPU build),
    the pins of the shipped requirements-server.txt, into `env_dir`."""
    requirements = Path(server_root) / REQUIREMENTS_FILE
    if not requirements.is_file():
        raise InstallError(f"{requirements} is missing: the extension was built without it. Reinstall the "
                           "extension from the Glimpse3D zip.")
    _, pin = split_requirements(requirements.read_text(encoding="utf-8"))
    build = choose_torch_build(machine or detect_machine(), pin or "torch", force_cpu=force_cpu)
    installer = EnvInstaller(env_dir, build, server_root, log_path, on_progress=on_progress, cancel=cancel,
                             binary_path=binary_path)
    return installer.run()
