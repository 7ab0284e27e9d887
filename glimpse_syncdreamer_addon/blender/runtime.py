"""The add-on's one `Session`, the timer that drains its events on Blender's main thread,
and the import of finished sets. (Timers do not run in background Blender; there the
operators call `session.poll()` themselves.)"""
import atexit
import sys
import textwrap

import bpy

from ..core import job_runner as jr
from ..core import batch_queue as bq
from ..core.batch_queue import BatchQueue
from ..core.import_options import ImportOptions, ImportPlan
from ..core.panel_state import STARTING
from ..core.session import Session
from ..core.setup_check import all_ok, format_report

TICK_ACTIVE_S = 0.25  # while something runs: a smooth progress bar
TICK_IDLE_S = 1.0

session = Session()
queue = BatchQueue()  # the sidebar's batch queue


def import_sets(context, folders, options: ImportOptions, names=()) -> list:
    """Import every finished set folder; returns the collections (main thread only)."""
    from . import scene_import

    names = list(names) + [None] * (len(folders) - len(names))
    return [scene_import.import_view_set(context, folder, name=name, **options.scene_kwargs())
            for folder, name in zip(folders, names)]


def say(text: str) -> None:
    """Print a progress line in background mode, whatever the console's encoding."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, "replace").decode(encoding), flush=True)


# -- the main-thread timer ------------------------------------------------------------------
def tick():
    try:
        from . import queue_ops

        events = session.poll()
        for event in events:
            _handle(event)
        queue_ops.submit_next(bpy.context)  # the batch queue's next image, when no job runs
        if events or _active():
            redraw()
    except Exception as exc:  # a timer that raises is dropped for good: report and go on
        say(f"Glimpse3D: internal error in the update timer: {exc!r}")
    return TICK_ACTIVE_S if _active() else TICK_IDLE_S


def _active() -> bool:
    return session.state.busy or session.state.server == STARTING or session.setup_running or queue.running


def _handle(event) -> None:
    plan = event.tag if isinstance(event.tag, ImportPlan) else None
    item = queue.get(plan.queue_item) if plan is not None and plan.queue_item is not None else None
    if event.kind == jr.JOB_DONE and plan is not None and plan.options.import_result:
        window = _any_window()
        try:
            with bpy.context.temp_override(**({"window": window} if window else {})):
                collections = import_sets(bpy.context, event.folders, plan.options, plan.set_names(len(event.folders)))
        except Exception as exc:  # ViewSetError, ValueError: the set is on disk, the import failed
            session.state.error = (f"The views were generated in {event.folders[0]} but could not be "
                                   f"imported: {exc}. Try File > Import > Glimpse3D Views.")
            if item is not None:
                queue.finish(item.id, bq.FAILED, session.state.error)
            else:
                popup(session.state.error)
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
            popup(event.message)
    elif event.kind == jr.JOB_CANCELLED and item is not None:
        queue.finish(item.id, bq.CANCELLED, event.message)
    elif event.kind == jr.SETUP_REPORT:  # Check Setup may be pressed in the sidebar: answer there too
        ok = all_ok(event.tag)
        popup(format_report(event.tag), title="Glimpse3D setup: " + ("OK" if ok else "something is missing"),
              icon="CHECKMARK" if ok else "ERROR")


def _any_window():
    wm = bpy.context.window_manager
    return wm.windows[0] if wm is not None and len(wm.windows) else None


def popup(message: str, title: str = "Glimpse3D", icon: str = "ERROR") -> None:
    """Show an error where the artist looks, whichever editor they are in."""
    window = _any_window()
    if window is None or bpy.app.background:
        say(f"{title}: {message}")
        return
    lines = [piece for line in message.splitlines() for piece in (textwrap.wrap(line, 90) or [""])]

    def draw(menu, _context):
        for line in lines[:30]:
            menu.layout.label(text=line)

    with bpy.context.temp_override(window=window):
        bpy.context.window_manager.popup_menu(draw, title=title, icon=icon)


def redraw() -> None:
    wm = bpy.context.window_manager
    for window in wm.windows if wm is not None else ():
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PREFERENCES"}:
                area.tag_redraw()


# -- start with Blender, stop with Blender --------------------------------------------------
def _autostart():
    from .prefs import addon_prefs, server_settings
    from ..core.server_settings import LOCAL

    prefs = addon_prefs()
    if prefs is not None and prefs.server_mode == LOCAL and prefs.start_mode == "WITH_BLENDER":
        try:
            session.start_server(server_settings())
        except Exception as exc:  # shown in the panel's error box too
            say(f"Glimpse3D: the server could not start: {exc}")
    return None


def _at_exit():
    session.shutdown()


def register():
    global session, queue
    session = Session()
    queue = BatchQueue()
    bpy.app.timers.register(tick, first_interval=TICK_IDLE_S, persistent=True)
    if not bpy.app.background:
        bpy.app.timers.register(_autostart, first_interval=1.0)
    atexit.register(_at_exit)


def unregister():
    atexit.unregister(_at_exit)
    for timer in (tick, _autostart):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    session.shutdown()
