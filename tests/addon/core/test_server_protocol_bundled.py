"""The add-on reaches the server's protocol module both ways (repository and built extension), and
importing it loads the standard library only: no numpy, torch, Pillow or web framework, which
Blender's Python does not have."""
from glimpse_syncdreamer_addon.core import job_request, server_process, view_sets
from glimpse_syncdreamer_addon.core.bundled import protocol


def test_from_the_repository_and_the_add_on_uses_it():
    assert protocol.__name__ == "inference_server.protocol"
    assert server_process.parse_ready_line is protocol.parse_ready_line
    assert job_request.BACKGROUND_CHOICES == protocol.BACKGROUND_CHOICES
    assert view_sets.FORMAT_NAME == protocol.FORMAT_NAME and view_sets.CAMERAS_FILE == protocol.CAMERAS_FILE
    # an image the add-on accepts fits into the server's default body once base64-encoded
    assert (job_request.MAX_IMAGE_BYTES + 2) // 3 * 4 + protocol.BODY_ENVELOPE_BYTES <= protocol.DEFAULT_MAX_BODY_BYTES


def test_inside_the_extension_layout_with_the_standard_library_only(run_in_extension_layout):
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from bl_ext_test.core.bundled import protocol\n"
        "line = protocol.format_ready_line(8765, 'http://127.0.0.1:8765', 1, '0')\n"
        "assert protocol.parse_ready_line(line)['port'] == 8765\n"
        "third_party = sorted(name for name in set(sys.modules) - before if name.split('.')[0] not in "
        "sys.stdlib_module_names and not name.startswith('bl_ext_test'))\n"
        "print(protocol.__name__, third_party)\n"
    )
    # nothing but the standard library can be imported
    result = run_in_extension_layout("bundled.py", probe, with_numpy=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["bl_ext_test.inference_server.protocol", "[]"]
