"""Names for an imported set's datablocks. Blender 4.2-4.5 cut names at 63 bytes (UTF-8), and
the import adds suffixes such as "_view_15" and " 15" (markers): the set's name is shortened
first, at a character boundary, so the suffixes survive and the sixteen names stay distinct.
Non-ASCII characters are kept. No bpy, so it is tested in plain Python."""
from __future__ import annotations

from itertools import count

MAX_NAME_BYTES = 63  # Blender 4.2-4.5's limit for datablock and marker names
LONGEST_SUFFIX = "_view_00"  # of "<set>_rig", "<set>_cam_00", "<set>_view_00", "<set> 00"
FALLBACK_NAME = "views"


def fit_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes without splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def set_name(wanted: str, is_taken) -> str:
    """A name for a new set: `wanted` (shortened to leave room for the suffixes), or with
    ".002", ".003", ... when `is_taken(name)` says another set already uses it."""
    room = MAX_NAME_BYTES - len(LONGEST_SUFFIX)
    base = fit_bytes(wanted.strip(), room).rstrip(" ._-") or FALLBACK_NAME
    if not is_taken(base):
        return base
    for number in count(2):
        suffix = f".{number:03d}"
        candidate = fit_bytes(base, room - len(suffix)).rstrip(" ._-") + suffix
        if not is_taken(candidate):
            return candidate
