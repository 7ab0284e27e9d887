"""The add-on's one `Session`, the timer that drains its events on Blender's main thread,
and the import of finished sets. (Timers do not run in background Blender; there the
operators call `session.poll()` themselves.)"""
import atexit
import sys
import textwrap

import bpy

from ..core import job_runner as jr
from ..core.import_options import ImportOptions
from ..core.panel_state import STARTING
from ..core.session import Session
from ..core.setup_check import all_ok, format_report

TICK_ACTIVE_S = 0.25  # while something runs: a smooth progress bar
TICK_IDLE_S = 1.0

session = Session()


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
        events = session.poll()
        for event in events:
            _handle(event)
        if events or _active():
            redraw()
    except Exception as exc:  # a timer that raises is dropped for good: report and go on
        say(f"Glimpse3D: internal error in the update timer: {exc!r}")
    return TICK_ACTIVE_S if _active() else TICK_IDLE_S


def _active() -> bool:
    return session.state.busy or session.state.server == STARTING or session.setup_running


def _handle(event) -> None:
    if event.kind == jr.JOB_DONE and isinstance(event.tag, ImportOptions) and event.tag.import_result:
        window = _any_window()
        try:
            with bpy.context.temp_override(**({"window": window} if window else {})):
                collections = import_sets(bpy.context, event.folders, event.tag)
        except Exception as exc:  # ViewSetError, ValueError: the set is on disk, the import failed
            session.state.error = (f"The views were generated in {event.folders[0]} but could not be "
                                   f"imported: {exc}. Try File > Import > Glimpse3D Views.")
            popup(session.state.error)
        else:
            session.state.notice = "Imported " + ", ".join(c.name for c in collections)
    elif event.kind in (jr.JOB_FAILED, jr.SERVER_FAILED):
        popup(event.message)
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
    global session
    session = Session()
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
