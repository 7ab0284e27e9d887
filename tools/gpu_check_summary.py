"""The closing table of tools/gpu_check.sh: read the steps' record and their JSON files in OUTDIR,
print the key figures, and write OUTDIR/summary.json.

    python tools/gpu_check_summary.py OUTDIR STEPS.tsv

STEPS.tsv has one line per step: name, status (ok, failed, timeout, skipped), seconds, JSON file.
Standard library only, so it runs even where the project's packages do not import.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def read_steps(path: Path) -> list[dict]:
    steps = []
    for line in path.read_text().splitlines():
        name, status, seconds, output = line.split("\t")
        steps.append({"name": name, "status": status, "seconds": float(seconds), "json": output or None})
    return steps


def figures(name: str, data: dict) -> dict:
    """The few numbers of one step's JSON that the table shows."""
    if "speed" in data:  # a bench run
        out = {}
        for row in data["speed"]:
            n = row["samples"]
            out[f"s_per_sample_{n}"] = row["seconds_per_sample"]
            out[f"sampling_s_{n}"] = row["sampling_seconds"]
            out[f"peak_gb_{n}"] = row["peak_memory"]["allocated_gb"]
            out[f"tflops_exec_{n}"] = row["tflops_executed"]
        out["load_s"] = data["load"]["seconds"]
        if "startup" in data:
            out["startup_s"] = data["startup"]["seconds"]
        for row in data.get("accuracy", []):
            out[f"max_error_{row['precision']}"] = row["max"]
        return out
    if "submit_to_last_view_s" in data:  # the HTTP generation
        return {"submit_to_last_view_s": data["submit_to_last_view_s"], "server_ready_s": data["server_ready_s"]}
    return {}


def main(out_dir: Path, steps_file: Path) -> int:
    steps = read_steps(steps_file)
    environment = None
    for step in steps:
        path = out_dir / step["json"] if step["json"] else None
        if path is not None and path.is_file() and step["status"] == "ok":
            data = json.loads(path.read_text())
            step["figures"] = figures(step["name"], data)
            environment = environment or data.get("environment")
        else:
            step["figures"] = {}
    failed = [step["name"] for step in steps if step["status"] != "ok"]
    summary = {"ok": not failed, "failed": failed, "environment": environment, "steps": steps}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))

    if environment:
        print(f"gpu_check on {environment['device']}: {environment['device_name']}, torch {environment['torch']}, "
              f"CUDA {environment['cuda']}")
    print(f"{'step':<16} {'status':<8} {'s':>6}  figures")
    for step in steps:
        shown = ", ".join(f"{key} {value:.3g}" for key, value in step["figures"].items())
        print(f"{step['name']:<16} {step['status']:<8} {step['seconds']:>6.0f}  {shown}")
    print("gpu_check: " + ("every step passed" if not failed else "FAILED: " + ", ".join(failed)))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
