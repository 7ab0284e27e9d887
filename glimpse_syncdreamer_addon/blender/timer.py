"""The main-thread timer: it drains the session's events (imports finished sets, fills the
batch queue's rows, shows failures), sends the queue's next image, and starts the local server
with Blender when the preferences say so. (Timers do not run in background Blender; there the
operators and the API call `session.poll()` themselves.)"""
import bpy

from ..core import batch_queue as bq
from ..core import job_runner as jr
from ..core.import_options import ImportPlan
from ..core.panel_state import STARTING
from ..core.server_settings import LOCAL
from ..core.setup_check import all_ok, format_report
from . import generate, runtime
from .settings import addon_prefs, server_settings

TICK_ACTIVE_S = 0.25  # while something runs: a smooth progress bar
TICK_IDLE_S = 1.0


def tick():
    try:
        events = runtime.session.poll()
        for event in events:
            _handle(event)
        generate.submit_next(bpy.context)  # the batch queue's next image, when no job runs
        if events or _active():
            runtime.redraw()
    except Exception as exc:  # a timer that raises is dropped for good: report and go on
        runtime.say(f"Glimpse3D: internal error in the update timer: {exc!r}")
    return TICK_ACTIVE_S if _active() else TICK_IDLE_S


def _active() -> bool:
    session = runtime.session
    return (session.state.busy or session.state.server == STARTING or session.setup_running
            or runtime.queue.running)


def _handle(event) -> None:
    session, queue = runtime.session, runtime.queue
    plan = event.tag if isinstance(event.tag, ImportPlan) else None
    item = queue.get(plan.queue_item) if plan is not None and plan.queue_item is not None else None
    if event.kind == jr.JOB_DONE and plan is not None and plan.options.import_result:
        window = runtime.any_window()
        try:
            with bpy.context.temp_override(**({"window": window} if window else {})):
                collections = generate.import_sets(bpy.context, event.folders, plan.options, plan.set_names(len(event.folders)))
        except Exception as exc:  # ViewSetError, ValueError: the set is on disk, the import failed
            session.state.error = (f"The views were generated in {event.folders[0]} but could not be "
                                   f"imported: {exc}. Try File > Import > Glimpse3D Views.")
            if item is not None:
                queue.finish(item.id, bq.FAILED, session.state.error)
            else:
                runtime.popup(session.state.error)
        else:
            names = [c.name for c in collections]
            session.state.notice = "Imported " + ", ".join(names)
            if item is not None:
                queue.finish(item.id, bq.DONE, ", ".join(names), names)
    elif event.kind == jr.JOB_DONE and item is not None:  # generated, not imported
        queue.finish(item.id, bq.DONE, event.folders[0] if event.folders else "")
    elif event.kind in (jr.JOB_FAILED, jr.SERVER_FAILED):
        item = item or (queue.current if event.kind == jr.SERVER_FAILED else None)
        if item is not None:  # the queue shows it, and goes on with the next image
            queue.finish(item.id, bq.FAILED, event.message)
        else:
            runtime.popup(event.message)
    elif event.kind == jr.JOB_CANCELLED and item is not None:
        queue.finish(item.id, bq.CANCELLED, event.message)
    elif event.kind == jr.SETUP_REPORT:  # Check Setup may be pressed in the sidebar: answer there too
        ok = all_ok(event.tag)
        runtime.popup(format_report(event.tag), title="Glimpse3D setup: " + ("OK" if ok else "something is missing"),
                      icon="CHECKMARK" if ok else "ERROR")


# -- start with Blender ---------------------------------------------------------------------
def _autostart():
    prefs = addon_prefs()
    if prefs is not None and prefs.server_mode == LOCAL and prefs.start_mode == "WITH_BLENDER":
        try:
            runtime.session.start_server(server_settings())
        except Exception as exc:  # shown in the panel's error box too
            runtime.say(f"Glimpse3D: the server could not start: {exc}")
    return None


def register():
    bpy.app.timers.register(tick, first_interval=TICK_IDLE_S, persistent=True)
    if not bpy.app.background:
        bpy.app.timers.register(_autostart, first_interval=1.0)


def unregister():
    for timer in (tick, _autostart):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
