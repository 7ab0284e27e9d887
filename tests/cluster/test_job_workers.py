"""jobs.JobManager with several workers (what the cluster's job store runs: one per replica)."""
import threading

from inference_server import protocol
from inference_server.server.jobs import JobManager, JobOutput


def wait_until(condition, timeout=10.0):
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not reached")


def test_as_many_jobs_run_as_there_are_workers_and_the_rest_wait_in_order():
    release = threading.Event()
    started = []

    def runner(job, context):
        started.append(job.id)
        while not release.wait(0.01):
            context.raise_if_cancelled()
        return [JobOutput(sample=0, folder=job.payload, files=())]

    manager = JobManager(runner, workers=2)
    manager.start()
    try:
        jobs = [manager.submit(f"/out/{index}", {}, job_id=f"job{index}")["id"] for index in range(4)]
        wait_until(lambda: len(started) == 2)
        states = [manager.get(job_id)["state"] for job_id in jobs]
        assert states[:2] == [protocol.PREPARING] * 2 and states[2:] == [protocol.QUEUED] * 2
        assert manager.busy and manager.queue_length == 2

        assert manager.cancel("job0")["cancel_requested"]  # a running one stops, its worker takes the next
        wait_until(lambda: manager.get("job0")["state"] == protocol.CANCELLED)
        wait_until(lambda: "job2" in started)
        assert "job3" not in started and manager.get("job3")["state"] == protocol.QUEUED
        release.set()
        wait_until(lambda: all(manager.get(job_id)["state"] == protocol.DONE for job_id in jobs[1:]))
        assert not manager.busy
    finally:
        release.set()
        assert manager.shutdown(5)
