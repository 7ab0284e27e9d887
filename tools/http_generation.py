"""Time one generation through the HTTP server, as the add-on makes it: start `serve --preload`,
submit one job, poll it, and measure from the submit to the last view file written.

    python tools/http_generation.py --json OUT.json -- --config configs/syncdreamer.yaml --random-weights

Everything after `--` goes to `python -m inference_server serve` (model, device, precision).
A development tool beside tools/bench.py (used by tools/gpu_check.sh); it talks to the server
with the add-on's own client (glimpse_syncdreamer_addon.core.client, standard library only).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from glimpse_syncdreamer_addon.core.client import GlimpseClient
from inference_server.protocol import DONE, FINAL_STATES, TOKEN_ENV, parse_ready_line

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_IMAGE = REPO_ROOT / "examples" / "cat.png"
POLL_S = 0.05
READY_TIMEOUT_S = 600


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, required=True, help="where the figures go")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps of the job (default 50)")
    parser.add_argument("--samples", type=int, default=1, help="view sets of the job (default 1)")
    parser.add_argument("--image", type=Path, default=EXAMPLE_IMAGE, help="input image (default examples/cat.png)")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on the job after this (default 600 s)")
    parser.add_argument("serve_args", nargs="*", help="after --: arguments for `serve`")
    return parser.parse_args(argv)


def start_server(serve_args: list[str], output_root: Path, token: str) -> tuple[subprocess.Popen, dict, float]:
    """The server process, its ready line's JSON, and the seconds from start to that line."""
    command = [sys.executable, "-m", "inference_server", "serve", "--preload", "--port", "0",
               "--output-root", str(output_root), *serve_args]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=dict(os.environ, **{TOKEN_ENV: token}),
                               stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        info = parse_ready_line(line)
        if info is not None:
            return process, info, time.perf_counter() - started
        if time.perf_counter() - started > READY_TIMEOUT_S:
            break
    process.kill()
    raise SystemExit(f"http_generation: the server stopped or was not ready ({' '.join(command)})")


def run(args: argparse.Namespace) -> dict:
    token = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="glimpse-http-") as scratch:
        process, info, ready_s = start_server(args.serve_args, Path(scratch), token)
        try:
            client = GlimpseClient(info["url"], token)
            health = client.health()
            params = {"steps": args.steps, "samples": args.samples, "background": "keep", "seed": 0}
            image = args.image.read_bytes()
            submitted_wall, submitted = time.time(), time.perf_counter()
            job = client.create_job(image, args.image.name, params)
            polls = 0
            while job["state"] not in FINAL_STATES:
                if time.perf_counter() - submitted > args.timeout:
                    client.cancel_job(job["id"])
                    raise SystemExit(f"http_generation: the job was not done after {args.timeout:g} s")
                time.sleep(POLL_S)
                job = client.get_job(job["id"])
                polls += 1
            seen_done_s = time.perf_counter() - submitted
            if job["state"] != DONE:
                raise SystemExit(f"http_generation: the job ended {job['state']}: {job['error']}")
            files = [Path(output["folder"]) / name for output in job["outputs"] for name in output["files"]]
            views = [path for path in files if path.suffix == ".png"]
            last_view_s = max(path.stat().st_mtime for path in views) - submitted_wall
            return {"server_ready_s": ready_s, "submit_to_last_view_s": last_view_s,
                    "submit_to_done_seen_s": seen_done_s, "polls": polls, "views": len(views),
                    "files": len(files), "steps": args.steps, "samples": args.samples,
                    "job_started": job["started"], "job_finished": job["finished"],
                    "device": health.get("device"), "serve_args": args.serve_args}
        finally:
            try:
                client.shutdown()
                process.wait(timeout=30)
            except Exception:  # a server that does not stop is ended below
                pass
            if process.poll() is None:
                process.kill()


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run(args)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"http generation: {result['submit_to_last_view_s']:.2f} s from submit to the last of "
          f"{result['views']} views written ({result['steps']} steps, {result['samples']} sample(s); "
          f"server ready in {result['server_ready_s']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
