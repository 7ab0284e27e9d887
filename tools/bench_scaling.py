"""How batch runs scale over Ray: 1 vs 2 logical GPUs with a stand-in model of fixed speed.

    .venv/bin/python tools/bench_scaling.py [--images 24] [--seconds 1.0] [--gpus 1,2]

The stand-in takes exactly --seconds per image (it sleeps, then writes a tiny set), so the
figures show what the Ray path itself costs (scheduling, moving the image and the files, writing
them atomically), not the model. For each GPU count it starts a private Ray cluster with that
many logical GPUs, one worker per GPU (the `batch --ray` code: inference_server/cluster/), and
times a batch. Prints a table; the targets (issue 11): 2 GPUs take at most 0.6 of the time of 1,
and the overhead per image is at most 0.5 s. Results go in docs/scaling.md.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_IMAGE = REPO_ROOT / "tests" / "data" / "testset" / "cat.png"


@dataclass(frozen=True)
class FixedTimePipeline:
    """Stands in for pipeline.Pipeline: `seconds` per image, then a small file per set."""

    seconds: float

    def __call__(self):  # a worker builds its pipeline by calling the spec
        return self

    def run(self, request, progress=None, should_cancel=None):
        time.sleep(self.seconds)
        output = Path(request.output)
        output.mkdir(parents=True)
        (output / "stand-in.txt").write_bytes(b"x" * 4096)
        return [output]


def measure(gpus: int, images: list, out: Path, seconds: float) -> dict:
    from inference_server.generation.batch import collect_items, run_batch
    from inference_server.cluster.batch_ray import ray_executor, start_workers
    from inference_server.cluster.connect import ray_cluster

    items = collect_items(images, out, {})
    with ray_cluster("local", gpus=gpus, cpus=2 * gpus) as ray:
        started = time.monotonic()
        handles = start_workers(ray, FixedTimePipeline(seconds), gpus_per_worker=1.0, cpus_per_worker=1.0)
        start_s = time.monotonic() - started
        began = time.monotonic()
        summary = run_batch(items, out, ray_executor(ray, lambda: handles, resume=False), show_progress=False)
        wall_s = time.monotonic() - began
    if summary.done != len(items):
        raise SystemExit(f"{summary.failed} image(s) failed; see {summary.manifest}")
    ideal_s = len(items) * seconds / gpus
    return {"gpus": gpus, "images": len(items), "start_s": start_s, "wall_s": wall_s, "ideal_s": ideal_s,
            "overhead_s": (wall_s - ideal_s) / len(items) * gpus}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=24, help="images per batch (default 24)")
    parser.add_argument("--seconds", type=float, default=1.0, help="the stand-in's seconds per image (default 1)")
    parser.add_argument("--gpus", default="1,2", help="logical GPU counts to compare (default 1,2)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.gpus.split(",")]
    work = Path(tempfile.mkdtemp(prefix="glimpse-bench-scaling-"))
    try:
        images = []
        for index in range(args.images):
            image = work / "inputs" / f"image_{index:03d}.png"
            image.parent.mkdir(exist_ok=True)
            shutil.copyfile(TEST_IMAGE, image)
            images.append(image)
        rows = [measure(gpus, images, work / f"out_{gpus}", args.seconds) for gpus in counts]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = rows[0]["wall_s"]
    print(f"stand-in model: {args.seconds:g} s per image, {args.images} images, one worker per logical GPU")
    print("| logical GPUs | workers' start (s) | batch (s) | ideal (s) | overhead per image (s) | time vs first row |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['gpus']} | {row['start_s']:.1f} | {row['wall_s']:.2f} | {row['ideal_s']:.2f} | "
              f"{row['overhead_s']:.3f} | {row['wall_s'] / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
