"""The add-on's one `Session` and batch queue, and how the add-on speaks to the artist: a
printed line, a popup, a redraw. The timer that drains the session's events is timer.py.
Imports bpy and core only, so every other module may import it."""
import atexit
import sys
import textwrap

import bpy

from ..core.batch_queue import BatchQueue
from ..core.session import Session

session = Session()
queue = BatchQueue()  # the sidebar's batch queue


def say(text: str) -> None:
    """Print a progress line in background mode, whatever the console's encoding."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, "replace").decode(encoding), flush=True)


def any_window():
    wm = bpy.context.window_manager
    return wm.windows[0] if wm is not None and len(wm.windows) else None


def popup(message: str, title: str = "Glimpse3D", icon: str = "ERROR") -> None:
    """Show an error where the artist looks, whichever editor they are in."""
    window = any_window()
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


def _at_exit():
    session.shutdown()


def register():
    global session, queue
    session = Session()
    queue = BatchQueue()
    atexit.register(_at_exit)


def unregister():
    atexit.unregister(_at_exit)
    session.shutdown()
