"""The job engine with a fake runner: order, states, progress, cancel, failure, idle action."""
import threading
import time

import pytest

from inference_server.server.jobs import CANCELLED, DONE, FAILED, QUEUED, JobManager, JobOutput
from inference_server.generation.progress import SAMPLING, EtaClock, GenerationCancelled, ProgressEvent


class FakeRunner:
    """Runs `steps` sampling steps of `step_s` seconds each, honouring cancel like the model does."""

    def __init__(self, step_s=0.02):
        self.step_s = step_s
        self.order = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, job, context):
        self.order.append(job.id)
        self.gate.wait(5)
        steps = job.params.get("steps", 3)
        for step in range(1, steps + 1):
            time.sleep(self.step_s)
            if context.report(ProgressEvent(SAMPLING, step, steps)):
                raise GenerationCancelled()
        if job.params.get("fail"):
            raise MemoryError("pretend the GPU ran out of memory")
        return [JobOutput(sample=0, folder="/tmp/x", files=("view_00.png",))]


def wait_for(manager, job_id, states, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = manager.get(job_id)
        if job["state"] in states:
            return job
        time.sleep(0.005)
    raise AssertionError(f"job {job_id} stuck in {manager.get(job_id)['state']}")


@pytest.fixture
def runner():
    return FakeRunner()


@pytest.fixture
def manager(runner):
    manager = JobManager(runner)
    manager.start()
    yield manager
    manager.shutdown(5)


def test_jobs_run_one_at_a_time_in_submission_order(manager, runner):
    runner.gate.clear()
    ids = [manager.submit(None, {"steps": 2})["id"] for _ in range(3)]
    first = wait_for(manager, ids[0], ("sampling", "preparing"))
    assert first["state"] != QUEUED
    assert manager.get(ids[1])["state"] == QUEUED
    assert manager.get(ids[2])["message"] == "waiting in the queue (position 2)"
    assert manager.queue_length == 2 and manager.busy
    runner.gate.set()
    finished = [wait_for(manager, job_id, (DONE,)) for job_id in ids]
    assert runner.order == ids
    assert [job["finished"] for job in finished] == sorted(job["finished"] for job in finished)
    assert all(job["progress"] == 1.0 and job["step"] == 2 for job in finished)
    assert finished[0]["outputs"] == [{"sample": 0, "folder": "/tmp/x", "files": ["view_00.png"]}]
    assert manager.queue_length == 0


def test_progress_reports_step_of_total_and_an_eta(manager, runner):
    runner.step_s = 0.05
    job_id = manager.submit(None, {"steps": 8}, total_steps=8)["id"]
    deadline = time.monotonic() + 10
    seen = None
    while time.monotonic() < deadline:
        job = manager.get(job_id)
        if job["state"] == SAMPLING and job["step"] >= 3:
            seen = job
            break
        time.sleep(0.005)
    assert seen is not None, "never saw the job sampling"
    assert seen["total_steps"] == 8 and 0.05 < seen["progress"] < 0.9
    assert seen["eta_s"] is not None and 0 < seen["eta_s"] < 5
    assert seen["message"].startswith("sampling: step")
    wait_for(manager, job_id, (DONE,))


def test_cancel_running_and_queued_jobs(manager, runner):
    runner.step_s = 0.05
    running = manager.submit(None, {"steps": 200})["id"]
    queued = manager.submit(None, {"steps": 2})["id"]
    wait_for(manager, running, (SAMPLING,))
    assert manager.cancel(queued)["state"] == CANCELLED  # at once, it never ran
    asked = time.monotonic()
    assert manager.cancel(running)["cancel_requested"] is True
    job = wait_for(manager, running, (CANCELLED,))
    assert time.monotonic() - asked < 1.0  # within about one step
    assert job["outputs"] == [] and job["error"] is None
    assert runner.order == [running]
    assert manager.cancel("no-such-job") is None
    after = manager.submit(None, {"steps": 1})["id"]
    assert wait_for(manager, after, (DONE,))["state"] == DONE


def test_a_failed_job_leaves_the_worker_ready(manager):
    failed = manager.submit(None, {"steps": 1, "fail": True})["id"]
    job = wait_for(manager, failed, (FAILED,))
    assert job["error"]["code"] == "internal_error" and "MemoryError" in job["error"]["message"]
    ok = manager.submit(None, {"steps": 1})["id"]
    assert wait_for(manager, ok, (DONE,))["state"] == DONE


def test_idle_action_runs_once_after_the_idle_time(runner):
    calls = []
    manager = JobManager(runner, idle_seconds=0.2, on_idle=lambda: calls.append(time.monotonic()))
    manager.start()
    try:
        time.sleep(0.4)
        assert calls == []  # nothing ran yet, so nothing to unload
        job_id = manager.submit(None, {"steps": 1})["id"]
        wait_for(manager, job_id, (DONE,))
        done_at = time.monotonic()
        time.sleep(0.6)
        assert len(calls) == 1 and calls[0] - done_at >= 0.1
    finally:
        manager.shutdown(5)


def test_shutdown_cancels_queued_and_running_jobs(runner):
    runner.step_s = 0.05
    manager = JobManager(runner)
    manager.start()
    running = manager.submit(None, {"steps": 500})["id"]
    queued = manager.submit(None, {"steps": 1})["id"]
    wait_for(manager, running, (SAMPLING,))
    assert manager.shutdown(5) is True
    assert manager.get(running)["state"] == CANCELLED
    assert manager.get(queued)["state"] == CANCELLED


def test_eta_clock_ignores_the_warm_up_step():
    now = [0.0]
    clock = EtaClock(clock=lambda: now[0])
    clock.start(SAMPLING)
    now[0] = 5.0  # a slow first step (warm-up)
    assert clock.update(SAMPLING, 1, 10) == pytest.approx(45.0)
    now[0] = 6.0
    assert clock.update(SAMPLING, 2, 10) == pytest.approx(8.0)
    now[0] = 7.0
    assert clock.update(SAMPLING, 3, 10) == pytest.approx(7.0)
