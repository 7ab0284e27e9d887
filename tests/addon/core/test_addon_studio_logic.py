"""The bpy-free logic behind the studio-safe import and the Python API: set names, the default
output folder, the import options, the API's error kinds, and a blocking generation that is
interrupted (Ctrl+C) or cancelled leaving the session ready."""
from pathlib import Path
from types import SimpleNamespace

import pytest

from glimpse_syncdreamer_addon.core import api_errors
from glimpse_syncdreamer_addon.core import job_runner as jr
from glimpse_syncdreamer_addon.core import panel_state as ps
from glimpse_syncdreamer_addon.core.import_options import ImportOptions, ImportPlan
from glimpse_syncdreamer_addon.core.job_request import JobRequest
from glimpse_syncdreamer_addon.core.output_location import default_output_folder, user_data_dir
from glimpse_syncdreamer_addon.core.server_settings import REMOTE, ServerSettings
from glimpse_syncdreamer_addon.core.session import Session
from glimpse_syncdreamer_addon.core.set_names import MAX_NAME_BYTES, fit_bytes, set_name

REQUEST = JobRequest(b"png", "cat.png", {"steps": 2})


def test_set_names_keep_non_ascii_and_leave_room_for_suffixes():
    assert set_name("Ñandú 猫", lambda name: False) == "Ñandú 猫"
    long = "猫" * 30  # 90 bytes
    name = set_name(long, lambda name: False)
    assert name == "猫" * 18 and len((name + "_view_15").encode()) <= MAX_NAME_BYTES
    taken = {name, name[:-1] + ".002"}
    second = set_name(long, taken.__contains__)
    assert second not in taken and second.endswith(".002") is False and second.endswith(".003")
    assert len((second + "_view_15").encode()) <= MAX_NAME_BYTES
    assert fit_bytes("aé", 2) == "a"  # never half a character
    assert set_name("  ", lambda name: False) == "views"


def test_default_output_folder_lives_with_the_work(tmp_path):
    blend = tmp_path / "shots" / "sh010.blend"
    assert default_output_folder(str(blend)) == str(tmp_path / "shots" / "glimpse3d_views")
    unsaved = default_output_folder("", environ={"XDG_DATA_HOME": str(tmp_path / "data")}, platform="linux")
    assert unsaved == str(tmp_path / "data" / "Glimpse3D" / "views")
    home = Path("/home/artist")
    assert user_data_dir({}, "linux", home) == home / ".local" / "share"
    assert user_data_dir({}, "darwin", home) == home / "Library" / "Application Support"
    assert user_data_dir({"LOCALAPPDATA": r"C:\Users\a\AppData\Local"}, "win32", home) == Path(r"C:\Users\a\AppData\Local")
    assert "extensions" not in unsaved


def test_import_options_check_their_choices_and_name_samples():
    assert ImportOptions().scene_kwargs()["plane_distance"] is None  # 0 means through the rig origin
    assert "import_result" not in ImportOptions().scene_kwargs()
    with pytest.raises(ValueError, match="Interpolation must be one of Closest, Linear, Cubic, Smart"):
        ImportOptions(interpolation="Nearest")
    settings = SimpleNamespace(shader="PRINCIPLED", pack_images=True, proxy_mesh=True, steps=50)  # other options too
    assert ImportOptions.pick(settings) == ImportOptions(shader="PRINCIPLED", pack_images=True)
    assert ImportOptions.pick(settings, import_result=False).import_result is False
    assert ImportPlan(ImportOptions(), "猫").set_names(1) == ["猫"]
    assert ImportPlan(ImportOptions(), "猫").set_names(2) == ["猫_0", "猫_1"]
    assert ImportPlan(ImportOptions()).set_names(2) == [None, None]


def test_api_errors_share_one_base_and_are_told_apart_by_the_servers_code():
    for code, kind in (("damaged_image", api_errors.InputError), ("rembg_missing", api_errors.SetupError),
                       ("out_of_memory", api_errors.ServerError), ("", api_errors.ServerError)):
        error = api_errors.classify("message", code)
        assert type(error) is kind and isinstance(error, api_errors.Glimpse3DError) and error.code == code
    assert issubclass(api_errors.InputError, ValueError)  # callers catching ValueError still do
    assert issubclass(api_errors.CancelledError, api_errors.Glimpse3DError)


def _remote(fake_server):
    return ServerSettings(mode=REMOTE, url=fake_server.url, token=fake_server.token)


def test_ctrl_c_during_a_blocking_generation_cancels_the_server_job(fake_server, tmp_path):
    fake_server.job_states = [{"state": "sampling", "step": 1}]  # samples until cancelled
    session = Session()

    def interrupt(event):
        if event.kind == jr.JOB_PROGRESS:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        session.run_blocking(REQUEST, _remote(fake_server), on_event=interrupt, poll_s=0.01)
    assert ("POST", "/v1/jobs/job1/cancel") in [(m, p) for m, p, _, _ in fake_server.requests]
    assert not session.state.busy and session.state.server == ps.READY

    # The session is usable at once: the next generation runs to the end.
    fake_server.cancelled = False
    fake_server.job_states = [{"state": "done"}]
    fake_server.outputs = [{"sample": 0, "folder": "/remote/out/cat_job1"}]
    fake_server.files = {(0, "view_00.png"): b"v0"}
    settings = ServerSettings(mode=REMOTE, url=fake_server.url, token=fake_server.token, output_dir=str(tmp_path))
    end = session.run_blocking(REQUEST, settings, on_event=lambda event: None, poll_s=0.01)
    assert end.kind == jr.JOB_DONE and end.folders == (str(tmp_path / "cat_job1"),)


def test_blocking_cancel_waits_for_the_end_and_classifies_failures(fake_server):
    fake_server.job_states = [{"state": "sampling", "step": 1}]
    session = Session()
    session.submit(REQUEST, _remote(fake_server))
    assert session.cancel_blocking() is None  # not sent yet: dropped at once
    assert not session.state.busy and ("POST", "/v1/jobs") not in [(m, p) for m, p, _, _ in fake_server.requests]

    session.submit(REQUEST, _remote(fake_server))
    while session.state.job is None:  # the server is sampling it
        session.poll()
    end = session.cancel_blocking()
    assert end.kind == jr.JOB_CANCELLED and not session.state.busy and session.state.server == ps.READY
    assert session.cancel_blocking() is None  # nothing running: nothing to wait for

    fake_server.cancelled = False
    fake_server.job_states = [{"state": "failed", "error": {"code": "damaged_image", "message": "bad pixels"}}]
    end = session.run_blocking(REQUEST, _remote(fake_server), on_event=lambda event: None, poll_s=0.01)
    assert (end.kind, end.code, end.message) == (jr.JOB_FAILED, "damaged_image", "bad pixels")


def test_cancel_from_a_progress_callback_ends_the_blocking_generation(fake_server):
    fake_server.job_states = [{"state": "sampling", "step": 1}]
    session = Session()

    def cancel_on_progress(event):
        if event.kind == jr.JOB_PROGRESS and session.state.can_cancel:
            session.cancel_blocking()  # what glimpse3d_api.cancel() does in background mode

    end = session.run_blocking(REQUEST, _remote(fake_server), on_event=cancel_on_progress, poll_s=0.01)
    assert end.kind == jr.JOB_CANCELLED and session.state.server == ps.READY and not session.state.busy


def test_batch_queue_goes_on_after_a_failure_and_cancels_all(tmp_path):
    from glimpse_syncdreamer_addon.core import batch_queue as bq

    for name in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    queue = bq.BatchQueue()
    assert queue.add_folder(tmp_path) == 2 and [item.name for item in queue.items] == ["a.jpg", "b.png"]
    assert queue.add([tmp_path / "a.jpg", tmp_path / "c.png"]) == 1  # a.jpg is waiting already
    with pytest.raises(ValueError, match="holds no image"):
        queue.add_folder(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else None)
    assert queue.next_item() is None  # not started
    queue.start()
    first = queue.next_item()
    assert first.name == "a.jpg" and first.state == bq.RUNNING and queue.next_item() is None  # one at a time
    queue.finish(first.id, bq.FAILED, "damaged")
    second = queue.next_item()
    assert second.name == "b.png" and queue.running  # the failure did not stop the queue
    queue.finish(second.id, bq.DONE, "b", ["b"])
    third = queue.next_item()
    assert queue.cancel_all() is third and not queue.running
    queue.finish(third.id, bq.CANCELLED)
    assert [item.state for item in queue.items] == [bq.FAILED, bq.DONE, bq.CANCELLED]
    assert queue.summary == "1 done, 1 failed, 1 cancelled"
    queue.clear()
    assert queue.items == [] and queue.summary == "empty"
