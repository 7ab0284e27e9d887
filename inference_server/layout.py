"""Where the view sets of one generation go (the same rule for the CLI, the API and the server).

One sample: the set is the folder itself. Several: `sample_0` .. `sample_{N-1}` inside it.
"""
import re
from pathlib import Path


def sample_folders(folder, samples: int) -> list:
    """The view-set folder of each sample."""
    if samples == 1:
        return [Path(folder)]
    return [Path(folder) / f"sample_{index}" for index in range(samples)]


def job_folder_name(input_file: str, job_id: str) -> str:
    """`<input stem>_<job id>`, with the stem reduced to safe characters."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(input_file).stem).strip("_")[:40]
    return f"{stem or 'input'}_{job_id}"
