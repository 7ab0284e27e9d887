"""Build the installable Blender extension: dist/glimpse_syncdreamer-<version>.zip.

The zip root holds the add-on package's files (``__init__.py``, ``core/``, ``blender/``), the
manifest, and copies of ``inference_server/``, ``ldm/`` and ``configs/``, so that a user needs
only the zip plus a Python with torch. Usage:

    .venv/bin/python scripts/build_extension.py [--out-dir DIR] [--no-validate]

Importable for tests and the demo: ``build_extension(out_dir=...) -> Path`` and
``validate_extension(zip_path)``.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_NAME = "blender_manifest.toml"
ADDON_DIR = "glimpse_syncdreamer_addon"
# Folders copied as they are, so the server runs from the installed extension.
BUNDLED_DIRS = ("inference_server", "ldm", "configs")
# What Install Server installs into the server's environment (one list, read by the installer).
BUNDLED_FILES = ("requirements-server.txt", "constraints.txt")

# Never ship caches, editor litter or model weights (a user chooses the checkpoint).
SKIPPED_DIR_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".git", "tests"}
SKIPPED_SUFFIXES = {".pyc", ".pyo", ".ckpt", ".safetensors", ".pt", ".pth", ".bin", ".blend1"}
# A fixed timestamp makes two builds of the same tree byte-identical.
ZIP_DATE_TIME = (2024, 1, 1, 0, 0, 0)


class BuildError(RuntimeError):
    """The extension could not be built or did not validate; the message says why."""


def read_manifest(repo_root: Path = REPO_ROOT) -> dict:
    path = repo_root / MANIFEST_NAME
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise BuildError(f"{path} is missing; it is the extension's manifest") from None
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{path} is not valid TOML: {exc}") from None


def _is_shipped(path: Path) -> bool:
    if any(part in SKIPPED_DIR_NAMES or part.startswith(".") for part in path.parts):
        return False
    return path.suffix not in SKIPPED_SUFFIXES


def collect_files(repo_root: Path = REPO_ROOT) -> list[tuple[Path, str]]:
    """(source file, name inside the zip) for everything the extension ships, sorted by name."""
    entries: dict[str, Path] = {MANIFEST_NAME: repo_root / MANIFEST_NAME}
    entries.update({name: repo_root / name for name in BUNDLED_FILES})
    roots = [(repo_root / ADDON_DIR, "")] + [(repo_root / d, d + "/") for d in BUNDLED_DIRS]
    for source_root, prefix in roots:
        if not source_root.is_dir():
            raise BuildError(f"{source_root} is missing; the extension cannot be built without it")
        for path in sorted(source_root.rglob("*")):
            relative = path.relative_to(source_root)
            if path.is_file() and _is_shipped(relative):
                entries[prefix + relative.as_posix()] = path
    if "__init__.py" not in entries:
        raise BuildError(f"{repo_root / ADDON_DIR / '__init__.py'} is missing")
    return [(entries[name], name) for name in sorted(entries)]


def build_extension(out_dir: str | os.PathLike | None = None, *, repo_root: Path = REPO_ROOT,
                    validate: bool = False) -> Path:
    """Write the extension zip into ``out_dir`` (default ``<repo>/dist``) and return its path.

    The zip is written under a temporary name and renamed when complete, so a failed build
    never leaves a half-written zip behind.
    """
    manifest = read_manifest(repo_root)
    out_dir = Path(out_dir) if out_dir is not None else repo_root / "dist"
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    partial = zip_path.with_name(f".{zip_path.name}.partial-{os.getpid()}")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for source, name in collect_files(repo_root):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, source.read_bytes())
        if validate:
            validate_extension(partial)
        os.replace(partial, zip_path)
    finally:
        partial.unlink(missing_ok=True)
    return zip_path


def blender_ext_script() -> Path:
    """Blender's own extension tool, shipped inside the ``bpy`` wheel (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise BuildError("the bpy module is not installed in this Python; run `make env` first")
    for location in spec.submodule_search_locations:
        for candidate in sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py")):
            return candidate
    raise BuildError("blender_ext.py was not found inside the bpy package; reinstall bpy")


def validate_extension(zip_path: str | os.PathLike) -> str:
    """Run Blender's extension validator on the zip; return its output, raise BuildError if it fails."""
    result = subprocess.run(
        [sys.executable, str(blender_ext_script()), "validate", str(zip_path)],
        capture_output=True, text=True, timeout=120,
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise BuildError(f"Blender's validator rejected {zip_path}:\n{output}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=None, help="where the zip goes (default: dist/)")
    parser.add_argument("--no-validate", action="store_true",
                        help="skip Blender's validator (it needs the bpy module)")
    args = parser.parse_args(argv)
    try:
        zip_path = build_extension(args.out_dir, validate=not args.no_validate)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(zip_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
