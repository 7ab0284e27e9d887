"""The add-on's running state, without bpy: the server (child process or remote), its client,
the job in flight, and the panel state. Worker threads only put `Event`s in `events`; the main
thread calls `poll()` (from a timer in the UI, in a loop in background mode), which applies
them to the panel state and returns them so the Blender glue can import finished sets.
"""
from __future__ import annotations

import os
import queue
import secrets
import threading
import time
from dataclasses import replace

from . import job_runner as jr
from .bundle_paths import server_root
from .client import GlimpseClient, ServerError
from .job_runner import Event, JobRunner, drain_events
from .panel_state import BUSY, READY, STARTING, PanelState
from .server_process import EXITED, ServerProcess, ServerStartError
from .server_settings import NO_PYTHON_MESSAGE, NO_URL_MESSAGE, ServerSettings, child_environment, serve_argv
from .setup_check import MISSING, CheckItem, check_setup

# How long a blocking cancel waits for the server to stop the job (it stops after the current step).
CANCEL_WAIT_S = 60.0


class Session:
    def __init__(self, *, clock=time.monotonic, environ=None, root=None):
        self.state = PanelState()
        self.events: queue.Queue = queue.Queue()
        self.settings: ServerSettings | None = None  # those the current server was started with
        self.process: ServerProcess | None = None
        self.client: GlimpseClient | None = None
        self.runner: JobRunner | None = None
        self.last_folders: tuple = ()
        self.last_end: Event | None = None  # how the last job ended
        self.setup_report: list | None = None  # the last Check Setup's CheckItems
        self.setup_running = False
        self._clock = clock
        self._environ = os.environ if environ is None else environ
        self._root = root
        self._token = ""
        self._pending: JobRunner | None = None  # waits for the server to be ready
        self._serial = 0
        self._start_time = 0.0
        self.last_activity = clock()

    # -- server ---------------------------------------------------------------------------
    def start_server(self, settings: ServerSettings) -> None:
        """Start a local child or connect to a remote server; returns at once.

        Raises ServerStartError (and shows it in the panel) when it cannot even begin."""
        if self.state.server in (STARTING, READY, BUSY):
            return
        self.settings = settings
        self.state.server_starting()
        self._start_time = self._clock()
        try:
            if settings.is_local:
                self._start_local(settings)
            else:
                self._connect_remote(settings)
        except ServerStartError as exc:
            self.state.server_failed(str(exc))
            self._pending = self.runner = None
            raise

    def _start_local(self, settings: ServerSettings) -> None:
        if not settings.python:
            raise ServerStartError(NO_PYTHON_MESSAGE)
        try:
            root = self._root or server_root()
        except FileNotFoundError as exc:
            raise ServerStartError(str(exc)) from None
        self._token = secrets.token_urlsafe(24)
        process = ServerProcess(serve_argv(settings), child_environment(self._environ, root, self._token),
                                cwd=str(root))
        process.start()
        self.process = process

    def _connect_remote(self, settings: ServerSettings) -> None:
        if not settings.url:
            raise ServerStartError(NO_URL_MESSAGE)
        try:
            client = GlimpseClient(settings.url, settings.token, ca_file=settings.ca_file,
                                   fingerprint=settings.fingerprint)
        except ServerError as exc:  # a fingerprint or CA file that does not fit the URL
            raise ServerStartError(exc.message) from None

        def check():
            try:
                client.health()
            except ServerError as exc:
                self.events.put(Event(jr.SERVER_FAILED, message=exc.message))
            else:
                self.events.put(Event(jr.SERVER_READY, tag=client))  # adopted on the main thread

        threading.Thread(target=check, name="glimpse-connect", daemon=True).start()

    def stop_server(self) -> None:
        """Stop the local child (a remote server is only let go); cancels the running job."""
        process, client = self.process, self.client
        self._forget_job()
        self.process = self.client = None
        if process is not None:
            asked = False
            if client is not None:  # ready: let it finish cleanly
                try:
                    GlimpseClient(client.base_url, client.token, timeout=3, ca_file=client.ca_file,
                                  fingerprint=client.fingerprint).shutdown()
                    asked = True
                except ServerError:
                    pass
            if not (asked and process.wait_exit(5)):
                process.stop()
        self.state.server_stopped()

    def wait_until_ready(self, poll_s: float = 0.1) -> None:
        """Block until the server started by `start_server` is ready (background mode);
        raise ServerStartError with the reason when it failed or timed out."""
        while self.state.server == STARTING:
            self.poll()
            time.sleep(poll_s)
        self.poll()
        if self.client is None:
            raise ServerStartError(self.state.error or "The server is not running; start it first.")

    def unload_model(self, *, wait: bool = False) -> None:
        """Free the model's memory on the server; with `wait` on this thread (raises
        ServerError), else on a worker whose answer arrives as an event."""
        client = self.client
        if client is None:
            raise ServerError("The server is not running, so no model is loaded.", code="not_running")
        if wait:
            client.unload_model()
            self.state.notice = "Model unloaded; its memory is free."
            return

        def unload():
            try:
                client.unload_model()
            except ServerError as exc:
                self.events.put(Event(jr.PROBLEM, message=exc.message))
            else:
                self.events.put(Event(jr.MODEL_UNLOADED, message="Model unloaded; its memory is free."))

        threading.Thread(target=unload, name="glimpse-unload", daemon=True).start()

    def check_setup(self, settings: ServerSettings, *, wait: bool = False) -> list | None:
        """Run Check Setup; with `wait` on this thread (returns the items), else on a worker
        whose report arrives as a SETUP_REPORT event."""
        def run():
            try:
                return check_setup(settings, root=self._root)
            except Exception as exc:  # a bug here must still end "Checking…"
                return [CheckItem(MISSING, "setup check", f"failed unexpectedly: {exc!r}")]

        if wait:
            self.setup_report = run()
            return self.setup_report
        self.setup_running = True
        threading.Thread(target=lambda: self.events.put(Event(jr.SETUP_REPORT, tag=run())),
                         name="glimpse-setup-check", daemon=True).start()
        return None

    # -- jobs -----------------------------------------------------------------------------
    def submit(self, request, settings: ServerSettings, *, tag=None) -> None:
        """Send `request` (a core.job_request.JobRequest) to the server, starting it first when
        needed. `settings` start the server if it is not running yet."""
        if self.state.busy:
            raise RuntimeError("A generation is already running. Wait for it, or press Cancel.")
        if self.state.server not in (STARTING, READY, BUSY):
            self.start_server(settings)
        # The server's mode is the one it was started with; the output folder is the caller's
        # current one (it follows the saved .blend, which may have changed since the start).
        active = self.settings
        output_dir = settings.output_dir or active.output_dir
        if active.is_local and output_dir:
            request = replace(request, params={**request.params, "output_dir": output_dir})
        self._serial += 1
        runner = JobRunner(self.client, request, self.events, tag=tag, serial=self._serial,
                           download_to=None if active.is_local else (output_dir or None))
        self.runner = runner
        self.state.job_started()
        self.last_activity = self._clock()
        if self.state.server == BUSY and self.client is not None:
            runner.start()
        else:
            self._pending = runner

    def cancel(self) -> None:
        if self.runner is None:
            return
        if self._pending is self.runner:  # never sent
            self._forget_job()
            self.state.job_cancelled("Generation cancelled before it started.")
            return
        self.runner.cancel()
        self.state.cancel_requested()

    def _forget_job(self) -> None:
        if self.runner is not None:
            self.runner.cancel()
        self.runner = self._pending = None

    # -- the main thread's part -----------------------------------------------------------
    def poll(self) -> list:
        """Apply what happened since the last call; return the events (main thread only)."""
        self._watch_process()
        applied = []
        drain_events(self.events, lambda event: self._apply(event) and applied.append(event))
        return applied

    def _watch_process(self) -> None:
        process = self.process
        if process is None:
            return
        state = process.state
        if state == EXITED:
            self.process = self.client = None
            self._forget_job()
            self.events.put(Event(jr.SERVER_FAILED, message=process.failure_message()))
        elif self.state.server == STARTING:
            if process.ready_info is not None:
                self.client = GlimpseClient(process.ready_info["url"], self._token)
                self.events.put(Event(jr.SERVER_READY))
            elif self._clock() - self._start_time > self.settings.ready_timeout_s:
                self.process = None
                process.stop()
                self._forget_job()
                self.events.put(Event(jr.SERVER_FAILED, message=(
                    f"The server did not get ready within {self.settings.ready_timeout_s:g} s and was "
                    f"stopped. Its last output:\n{process.output_tail() or '(nothing)'}\nRaise 'Start "
                    "Timeout' in the add-on preferences if it is just slow.")))

    def _apply(self, event: Event) -> bool:
        """Update the state for one event; False for stale events (from a forgotten job)."""
        kind = event.kind
        if kind in (jr.JOB_SUBMITTED, jr.JOB_PROGRESS, *jr.JOB_END_KINDS):
            if self.runner is None or event.serial != self.runner.serial:
                return False
            self.last_activity = self._clock()
        if kind in (*jr.JOB_END_KINDS, jr.SERVER_FAILED):
            self.last_end = event
        if kind == jr.SERVER_READY:
            if isinstance(event.tag, GlimpseClient):
                self.client = event.tag
            self.state.server_ready()
            if self._pending is not None:
                self._pending.client = self.client
                self._pending.start()
                self._pending = None
        elif kind == jr.SERVER_FAILED:
            self._forget_job()
            self.state.server_failed(event.message)
        elif kind in (jr.JOB_SUBMITTED, jr.JOB_PROGRESS):
            self.state.job_progress(event.job)
        elif kind == jr.JOB_DONE:
            self.runner = None
            self.last_folders = tuple(event.folders)
            self.state.job_finished(f"Generated {len(event.folders)} view set(s).")
        elif kind == jr.JOB_FAILED:
            self.runner = None
            self.state.job_failed(event.message)
        elif kind == jr.JOB_CANCELLED:
            self.runner = None
            self.state.job_cancelled(event.message or "Generation cancelled.")
        elif kind in (jr.MODEL_UNLOADED, jr.NOTICE):
            self.state.notice = event.message
        elif kind == jr.PROBLEM:
            self.state.error = event.message
        elif kind == jr.SETUP_REPORT:
            self.setup_report, self.setup_running = list(event.tag), False
        return True

    # -- background mode and exit ---------------------------------------------------------
    def run_blocking(self, request, settings: ServerSettings, *, on_event=print, tag=None,
                     poll_s: float = 0.1) -> Event:
        """Submit and wait on this thread (background Blender has no timers); returns the end
        event (JOB_DONE, JOB_FAILED, JOB_CANCELLED or SERVER_FAILED).

        Whatever stops the wait (Ctrl+C's KeyboardInterrupt, an error raised by `on_event`)
        first cancels the job on the server, so the session is ready for the next one."""
        self.submit(request, settings, tag=tag)
        try:
            return self._wait_for_end(on_event, poll_s)
        except BaseException:
            self.cancel_blocking()
            raise

    def cancel_blocking(self, wait_s: float = CANCEL_WAIT_S, poll_s: float = 0.05) -> Event | None:
        """Cancel the running job and wait on this thread until it has ended (background mode,
        where no timer picks up the end); returns its end event, or None when there was no job.
        A server that does not confirm within `wait_s` has its job forgotten here."""
        if not self.state.busy:
            return None
        self.cancel()
        deadline = time.monotonic() + wait_s
        try:
            while self.state.busy and time.monotonic() < deadline:
                for event in self.poll():
                    if event.kind in (*jr.JOB_END_KINDS, jr.SERVER_FAILED):
                        return event
                time.sleep(poll_s)
        except BaseException:  # a second Ctrl+C: stop waiting, but never stay busy
            self._give_up_job()
            raise
        if self.state.busy:
            self._give_up_job()
        return None

    def _give_up_job(self) -> None:
        self._forget_job()
        self.state.job_cancelled("Generation cancelled; the server did not confirm it.")

    def _wait_for_end(self, on_event, poll_s: float) -> Event:
        while True:
            for event in self.poll():
                on_event(event)
                if event.kind in (*jr.JOB_END_KINDS, jr.SERVER_FAILED):
                    return event
            if not self.state.busy:  # `on_event` cancelled and waited itself: the end is taken
                return self.last_end
            time.sleep(poll_s)

    def shutdown(self) -> None:
        """Blender is quitting or the add-on is disabled: stop the child, drop everything."""
        try:
            self.stop_server()
        finally:
            self.events = queue.Queue()
