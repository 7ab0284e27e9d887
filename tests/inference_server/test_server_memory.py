"""Memory of the server process under images that are small files but huge pictures: queued jobs
keep the compressed file, previews scale before they pad, and decoding is bounded. Measured as
the process's peak resident memory (VmHWM in /proc)."""
import base64
import io
import sys

import pytest
from PIL import Image, ImageDraw

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status")]
WIDE = (16384, 2441)  # just under the 40-megapixel limit: 120 MB as RGB, 160 MB as RGBA
QUEUED_JOBS = 20
# One decoded picture at a time, plus its RGBA copy in a preview; 20 decoded images kept in the
# queue would take 2.4 GB, and padding to a square before scaling 1 GiB.
ALLOWED_GROWTH_MB = 600


def wide_png() -> bytes:
    image = Image.new("1", WIDE, 1)
    ImageDraw.Draw(image).rectangle((6000, 600, 9000, 1800), fill=0)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_queued_jobs_and_previews_hold_no_decoded_images(start_server, cat_png):
    big = wide_png()
    assert len(big) < 16 * 1024  # a few kilobytes on the wire
    server = start_server("--max-queue", str(QUEUED_JOBS + 1))
    first = server.submit(cat_png)
    assert server.wait_for(first["id"])["state"] == "done"  # the model loaded, a set written
    running = server.submit(cat_png, {"steps": 1000})
    server.wait_for(running["id"], ("sampling",), condition=lambda job: job["step"] >= 1)
    before = server.peak_rss_mb()

    queued = [server.submit(big, {"background": "keep", "seed": seed}) for seed in range(QUEUED_JOBS)]
    assert server.json("GET", "/v1/health")["queue_length"] == QUEUED_JOBS
    for crop_size in (-1, 200):
        status, png, _ = server.request("POST", "/v1/preview", {
            "image_b64": base64.b64encode(big).decode(), "params": {"background": "keep", "crop_size": crop_size}})
        assert status == 200 and Image.open(io.BytesIO(png)).size == (256, 256)
    after = server.peak_rss_mb()

    for job in (*queued, running):
        server.json("POST", f"/v1/jobs/{job['id']}/cancel", {}, expect=202)
    print(f"peak RSS {before:.0f} MiB before, {after:.0f} MiB after {QUEUED_JOBS} queued {WIDE[0]}x{WIDE[1]} "
          "jobs and two previews")
    assert after - before < ALLOWED_GROWTH_MB, (before, after)
