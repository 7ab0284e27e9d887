"""Batch runs: many images in, one complete view set each, and a manifest of how each went.

    python -m inference_server batch photos/ chair.png list.csv -o OUT [--resume] [--ray ADDRESS]

Inputs are image files, folders (their images, by name) and CSV files with a `file` column
(relative to the CSV) and optional per-image parameters: `elevation` (or `elevation_deg`, as in
tests/data/testset/params.csv), `crop_size`, `seed` or any other generation parameter. The
command's options are every image's defaults; a CSV cell overrides them for its row.

OUT/<stem>/ receives each image's set (or sample_<k> sets); OUT/manifest.jsonl gets one line per
image (source, params, output, state, error, seconds, ...). Lines are appended as images finish,
so a killed run keeps its record; at the end the file is rewritten with one line per image. A
failing image is recorded and the run goes on. `--resume` skips images whose sets are complete
and those that failed on their input (unreadable image, bad parameter) unchanged since; it runs
the others again (e.g. those of a worker that died).

How images are generated is the executor's business: `local_executor` runs them one after the
other through the one pipeline (pipeline.py); cluster/batch_ray.py spreads them over Ray workers.
An executor is `execute(items) -> iterator of ItemResult`, in the order images finish.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

from .. import protocol
from ..errors import InputError, describe_failure
from ..view_set.staging import replaced_whole
from .params import GenerationParams, cli_flag, parse_params
from .pipeline import GenerationRequest, set_folders

MANIFEST_FILE = "manifest.jsonl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
DONE, FAILED, SKIPPED = "done", "failed", "skipped"
# CSV column names that mean a parameter under another name
_CSV_ALIASES = {"elevation_deg": "elevation"}
_CSV_FILE_COLUMNS = ("file", "image", "path")


@dataclass(frozen=True)
class BatchItem:
    """One image of a run: where it comes from, how it is made, where its set goes.

    `params` is None when the image's own parameters (a CSV row) were refused; `error` says why.
    """

    source: Path
    output: Path
    params: GenerationParams | None
    raw_params: dict
    error: str | None = None


@dataclass(frozen=True)
class ItemResult:
    """How one image went. `input_error`: it failed on the image or its parameters (InputError),
    so running it again unchanged fails again; other failures (a lost worker, a full disk) may not."""

    item: BatchItem
    state: str  # DONE, FAILED or SKIPPED
    error: str | None = None
    seconds: float = 0.0
    input_error: bool = False

    def manifest_line(self) -> dict:
        return {"source": str(self.item.source), "params": _params_json(self.item),
                "output": str(self.item.output), "state": self.state, "error": self.error,
                "input_error": self.input_error, "input_stamp": _stamp(self.item.source),
                "seconds": round(self.seconds, 3)}


def _params_json(item: BatchItem) -> dict:
    return item.params.to_json() if item.params else item.raw_params


def _stamp(source: Path) -> str | None:
    """Size and modification time: tells whether an image changed since its line was written."""
    try:
        status = Path(source).stat()
    except OSError:
        return None
    return f"{status.st_size}:{status.st_mtime_ns}"


def _settled(item: BatchItem, line: dict | None) -> bool:
    """True when --resume has nothing to do for the image: its sets are complete, or it failed on
    its input and neither the image nor its parameters changed since."""
    if line is not None and line.get("state") == FAILED and line.get("input_error") \
            and line.get("input_stamp") == _stamp(item.source) and line.get("params") == _params_json(item):
        return True
    return is_complete(item)


@dataclass(frozen=True)
class BatchSummary:
    done: int
    failed: int
    skipped: int
    manifest: Path
    failed_in_manifest: int  # images whose last line says failed, earlier runs' included


# ---- what to generate ---------------------------------------------------------------------------

def collect_items(inputs, out, defaults: dict) -> list:
    """The run's images, in the order given, each with its parameters and output folder.

    `defaults`: generation parameters given on the command line (checked here, once).
    Raises InputError for inputs that do not exist or a CSV that cannot be read.
    """
    parse_params(defaults, spell=cli_flag)  # a wrong default is the person's mistake for every image: say it once
    out = Path(out)
    found = []  # (source, row overrides)
    for given in inputs:
        path = Path(given)
        if path.suffix.lower() == ".csv" and path.is_file():
            found.extend(_csv_rows(path))
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                raise InputError(f"the folder {path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            found.extend((image, {}) for image in images)
        elif path.is_file():
            found.append((path, {}))
        else:
            raise InputError(f"{path} does not exist; give image files, folders of images or CSV files")
    if not found:
        raise InputError("no images to generate: give image files, folders or CSV files")
    items, names = [], set()
    for source, overrides in found:
        raw = {**defaults, **overrides}
        try:
            params, error = parse_params(raw), None
        except InputError as exc:
            params, error = None, exc.message
        items.append(BatchItem(source=source, output=out / _unique_name(source, names), params=params,
                               raw_params=raw, error=error))
    return items


def _unique_name(source: Path, taken: set) -> str:
    """The file's stem, with _2, _3 ... when two inputs share it (stable for the same inputs)."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in source.stem).strip(".") or "image"
    name, count = stem, 1
    while name in taken or name == MANIFEST_FILE:
        count += 1
        name = f"{stem}_{count}"
    taken.add(name)
    return name


def _csv_rows(path: Path) -> list:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip() for name in reader.fieldnames or ()]
            rows = [{(key or "").strip(): (value or "").strip() for key, value in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the CSV file {path} ({exc})") from None
    file_column = next((name for name in _CSV_FILE_COLUMNS if name in columns), None)
    if file_column is None:
        raise InputError(f"{path} has no 'file' column: its first line must name the columns, e.g. "
                         "file,elevation,crop_size,seed")
    known = set(GenerationParams.__dataclass_fields__)
    unknown = [c for c in columns if c != file_column and _CSV_ALIASES.get(c, c) not in known]
    if unknown:
        raise InputError(f"{path}: unknown column(s) {', '.join(unknown)}; besides '{file_column}' the columns "
                         f"can be: {', '.join(sorted(known | set(_CSV_ALIASES)))}")
    found = []
    for row in rows:
        if not row.get(file_column):
            continue  # a blank line
        overrides = {_CSV_ALIASES.get(key, key): _csv_value(value)
                     for key, value in row.items() if key != file_column and value != ""}
        found.append((path.parent / row[file_column], overrides))
    return found


def _csv_value(text: str):
    """A CSV cell as the JSON value it stands for (parse_params checks it like any other)."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def is_complete(item: BatchItem) -> bool:
    """True when every set of the image is on disk (what --resume skips). Sets appear whole
    (pipeline.py writes them atomically), and cameras.json, written last, marks each one."""
    if item.params is None:
        return False
    return all((folder / protocol.CAMERAS_FILE).is_file() for folder in set_folders(item.output, item.params.samples))


# ---- the run ------------------------------------------------------------------------------------

def check_run_folder(out, resume: bool) -> Path:
    """The manifest's path; InputError when OUT holds an earlier run and --resume was not given."""
    manifest = Path(out) / MANIFEST_FILE
    if manifest.exists() and not resume:
        raise InputError(f"{out} already holds a batch run ({MANIFEST_FILE}); pass --resume to go on with it "
                         "(complete sets are skipped), or choose another -o folder")
    return manifest


def run_batch(items, out, execute, *, resume: bool = False, show_progress: bool = True) -> BatchSummary:
    """Generate `items` with `execute`, recording each in OUT/manifest.jsonl (see the module)."""
    out = Path(out)
    manifest = check_run_folder(out, resume)
    out.mkdir(parents=True, exist_ok=True)
    lines = _read_manifest(manifest)
    settled = [resume and _settled(item, lines.get(str(item.source))) for item in items]
    skipped = [item for item, done in zip(items, settled) if done]
    refused = [item for item, done in zip(items, settled) if item.params is None and not done]
    todo = [item for item, done in zip(items, settled) if item.params is not None and not done]
    counts = {DONE: 0, FAILED: 0, SKIPPED: len(skipped)}
    bar = _progress_bar(len(refused) + len(todo), show_progress)
    with open(manifest, "a", encoding="utf-8") as log:
        def record(result: ItemResult):
            counts[result.state] += 1
            line = result.manifest_line()
            lines[line["source"]] = line
            log.write(json.dumps(line) + "\n")
            log.flush()
            bar.update(1)
            bar.set_postfix(done=counts[DONE], failed=counts[FAILED])

        for item in skipped:
            if str(item.source) not in lines:  # complete before any manifest (e.g. a copied folder)
                lines[str(item.source)] = ItemResult(item, SKIPPED).manifest_line()
        for item in refused:
            record(ItemResult(item, FAILED, error=item.error, input_error=True))
        try:
            for result in execute(todo):
                record(result)
        except BaseException:
            if log.tell() == 0 and not lines:  # nothing ran (e.g. the workers could not start): no run to resume
                manifest.unlink()
            raise
        finally:
            bar.close()
    final = [lines[str(item.source)] for item in items if str(item.source) in lines]
    _write_manifest(manifest, final)
    return BatchSummary(done=counts[DONE], failed=counts[FAILED], skipped=counts[SKIPPED], manifest=manifest,
                        failed_in_manifest=sum(line["state"] == FAILED for line in final))


def _read_manifest(path: Path) -> dict:
    """source -> its last line (a killed run may have left several lines for one image)."""
    lines = {}
    if path.exists():
        for text in path.read_text(encoding="utf-8").splitlines():
            try:
                line = json.loads(text)
                lines[line["source"]] = line
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a killed run
    return lines


def _write_manifest(path: Path, lines: list) -> None:
    with replaced_whole(path) as partial:
        partial.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="image", desc="batch", disable=not enabled, dynamic_ncols=True)


def timed(item: BatchItem, generate) -> ItemResult:
    """Run `generate(item)`; a failure becomes a FAILED result with its message, not an exception."""
    start = time.monotonic()
    try:
        generate(item)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one bad image must not stop the run
        return ItemResult(item, FAILED, error=describe_failure(exc)["message"], seconds=time.monotonic() - start,
                          input_error=isinstance(exc, InputError))
    return ItemResult(item, DONE, seconds=time.monotonic() - start)


def local_executor(pipeline, *, resume: bool):
    """Images one after the other on this machine, through `pipeline` (one model, loaded once)."""
    def generate(item: BatchItem):
        pipeline.run(GenerationRequest(image=item.source, output=item.output, params=item.params,
                                       input_name=item.source.name, overwrite=resume))

    def execute(items):
        for item in items:
            yield timed(item, generate)

    return execute
