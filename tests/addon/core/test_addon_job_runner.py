"""The worker thread and its event queue, against the fake server: progress events in order,
local and downloaded sets, failures and cancel, and draining on the 'main thread'."""
import queue

import pytest

from glimpse_syncdreamer_addon.core import job_runner as jr
from glimpse_syncdreamer_addon.core.client import GlimpseClient
from glimpse_syncdreamer_addon.core.job_request import JobRequest
from glimpse_syncdreamer_addon.core.job_runner import Event, JobRunner, drain_events
from glimpse_syncdreamer_addon.core.set_download import download_sets

REQUEST = JobRequest(b"png", "cat.png", {"steps": 2})


def _run(fake_server, **kwargs):
    events = queue.Queue()
    runner = JobRunner(GlimpseClient(fake_server.url, fake_server.token), REQUEST, events,
                       poll_interval_s=0.01, tag="options", serial=7, **kwargs)
    runner.start()
    runner.join(10)
    assert not runner.is_alive()
    seen = []
    drain_events(events, seen.append)
    return seen


def test_follows_the_job_and_reports_local_folders(fake_server, tmp_path):
    fake_server.job_states = [{"state": "sampling", "step": 1, "eta_s": 3.0}, {"state": "sampling", "step": 2},
                              {"state": "decoding"}, {"state": "done"}]
    fake_server.outputs = [{"sample": 0, "folder": str(tmp_path), "files": ["view_00.png"]}]
    seen = _run(fake_server)
    kinds = [event.kind for event in seen]
    assert kinds == [jr.JOB_SUBMITTED] + [jr.JOB_PROGRESS] * 4 + [jr.JOB_DONE]
    assert [e.job["state"] for e in seen[1:5]] == ["sampling", "sampling", "decoding", "done"]
    assert seen[-1].folders == (str(tmp_path),)
    assert all(e.tag == "options" and e.serial == 7 for e in seen)


def test_failed_job_reports_the_servers_message(fake_server):
    fake_server.job_states = [{"state": "failed", "error": {"code": "setup_error", "message": "no checkpoint; do X"}}]
    seen = _run(fake_server)
    assert seen[-1].kind == jr.JOB_FAILED and seen[-1].message == "no checkpoint; do X"


def test_refused_request_ends_as_failure_not_a_dead_thread(fake_server):
    events = queue.Queue()
    bad = JobRequest(b"png", "cat.png", {"steps": 0})
    JobRunner(GlimpseClient(fake_server.url, fake_server.token), bad, events).run()
    (event,) = [events.get_nowait()]
    assert event.kind == jr.JOB_FAILED and "'steps'" in event.message


def test_local_folder_missing_says_to_use_remote_mode(fake_server, tmp_path):
    fake_server.outputs = [{"sample": 0, "folder": str(tmp_path / "elsewhere"), "files": []}]
    seen = _run(fake_server)
    assert seen[-1].kind == jr.JOB_FAILED and "Remote" in seen[-1].message


def test_cancel_posts_cancel_and_ends_cancelled(fake_server):
    fake_server.job_states = [{"state": "sampling", "step": 1}]  # would run forever
    events = queue.Queue()
    runner = JobRunner(GlimpseClient(fake_server.url, fake_server.token), REQUEST, events, poll_interval_s=0.05)
    runner.start()
    first = events.get(timeout=5)
    assert first.kind == jr.JOB_SUBMITTED
    runner.cancel()
    runner.join(10)
    seen = []
    drain_events(events, seen.append)
    assert seen[-1].kind == jr.JOB_CANCELLED
    assert ("POST", "/v1/jobs/job1/cancel") in [(m, p) for m, p, _, _ in fake_server.requests]


def test_remote_sets_are_downloaded_whole(fake_server, tmp_path):
    fake_server.outputs = [{"sample": 0, "folder": "/srv/out/cat_job1/sample_0"},
                           {"sample": 1, "folder": "/srv/out/cat_job1/sample_1"}]
    fake_server.files = {(s, name): f"{s}:{name}".encode() for s in (0, 1) for name in ("view_00.png", "cameras.json")}
    seen = _run(fake_server, download_to=tmp_path)
    assert seen[-1].kind == jr.JOB_DONE
    assert [p.rsplit("/", 1)[-1] for p in seen[-1].folders] == ["cat_job1_sample_0", "cat_job1_sample_1"]
    assert (tmp_path / "cat_job1_sample_1" / "cameras.json").read_bytes() == b"1:cameras.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat_job1_sample_0", "cat_job1_sample_1"]  # no partials


def test_download_refuses_unsafe_names_and_leaves_nothing(fake_server, tmp_path):
    client = GlimpseClient(fake_server.url, fake_server.token)
    fake_server.files = {(0, "view_00.png"): b"x"}
    job = {"id": "job1", "outputs": [{"sample": 0, "folder": "/srv/.."}]}  # a folder name ".."
    with pytest.raises(ValueError, match="unsafe"):
        download_sets(client, job, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_drain_events_hands_over_in_order_and_stops_when_empty():
    events = queue.Queue()
    for i in range(5):
        events.put(Event(jr.JOB_PROGRESS, job={"step": i}))
    handled = []
    assert drain_events(events, handled.append, max_events=2) == 2
    assert drain_events(events, handled.append) == 3
    assert drain_events(events, handled.append) == 0
    assert [e.job["step"] for e in handled] == [0, 1, 2, 3, 4]
