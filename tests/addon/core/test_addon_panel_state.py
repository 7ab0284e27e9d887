"""The panel's state machine and progress text, as plain functions."""
import pytest

from glimpse_syncdreamer_addon.core import panel_state as ps
from glimpse_syncdreamer_addon.core.panel_state import PanelState, format_eta, progress_factor, progress_text


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (8.4, "8 s"), (59.6, "1 min 00 s"), (125, "2 min 05 s"),
                                           (3720, "1 h 02 min")])
def test_format_eta(seconds, text):
    assert format_eta(seconds) == text


def test_progress_text_for_each_phase():
    assert progress_text({"state": "sampling", "step": 12, "total_steps": 50, "eta_s": 8.2}) == "Step 12/50 · ETA 8 s"
    assert progress_text({"state": "sampling", "step": 1, "total_steps": 50, "eta_s": None}) == "Step 1/50"
    assert progress_text({"state": "loading_model"}) == "Loading the model"
    assert progress_text({"state": "queued"}) == "Waiting in the server's queue"
    assert progress_text({"state": "some_new_state", "message": "doing a new thing"}) == "doing a new thing"
    assert progress_text(None) == "Sending the image…"
    assert progress_text({"state": "sampling", "step": 3}, cancelling=True) == "Cancelling…"


def test_progress_factor_prefers_the_servers_overall_progress():
    assert progress_factor({"progress": 0.25, "step": 40, "total_steps": 50}) == 0.25
    assert progress_factor({"progress": None, "step": 10, "total_steps": 50}) == pytest.approx(0.2)
    assert progress_factor(None) == 0.0
    assert progress_factor({"progress": 1.7}) == 1.0


def test_a_full_run_through_the_states():
    state = PanelState()
    assert (state.server, state.can_start, state.can_stop, state.can_generate) == (ps.STOPPED, True, False, True)

    state.job_started()  # Generate on first use: the job waits for the server
    state.server_starting()
    assert state.server == ps.STARTING and state.busy
    assert state.progress_text == "Starting the server…"
    assert not state.can_generate and state.can_cancel and not state.can_start

    state.server_ready()
    assert state.server == ps.BUSY and not state.can_unload
    state.job_progress({"state": "sampling", "step": 2, "total_steps": 4, "eta_s": 61, "progress": 0.5})
    assert state.progress_text == "Step 2/4 · ETA 1 min 01 s" and state.progress_factor == 0.5

    state.cancel_requested()
    assert state.progress_text == "Cancelling…" and not state.can_cancel
    state.job_cancelled()
    assert state.server == ps.READY and not state.busy and state.notice == "Generation cancelled."
    assert state.can_generate and state.can_unload and state.can_stop

    state.job_started()
    state.job_failed("The image is empty; choose another.")
    assert state.server == ps.READY and state.error == "The image is empty; choose another."

    state.job_started()  # a new job clears the old error
    assert state.error == "" and state.server == ps.BUSY
    state.job_finished("Imported cat_views")
    assert state.server == ps.READY and state.notice == "Imported cat_views"


def test_server_death_ends_the_job_and_shows_why():
    state = PanelState()
    state.server_starting()
    state.server_ready()
    state.job_started()
    state.server_failed("The server stopped while running (exit code -9).")
    assert state.server == ps.ERROR and state.label == "Error"
    assert not state.busy and state.can_start and state.can_generate and not state.can_stop
    assert "exit code -9" in state.error
    state.server_starting()  # pressing Start again clears the error
    assert state.error == "" and state.label == "Starting…"
    state.server_stopped()
    assert state.server == ps.STOPPED
