"""docs/protocol.md is generated from the schema the server serves; this fails when it is stale."""
import importlib.util
import subprocess
import sys

from inference_server import protocol


def load_tool(repo_root):
    spec = importlib.util.spec_from_file_location("protocol_docs", repo_root / "tools" / "protocol_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_protocol_md_is_the_served_schema(repo_root):
    tool = load_tool(repo_root)
    expected = tool.render(tool.served_schema())
    written = (repo_root / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert written == expected, "docs/protocol.md is out of date: run `python tools/protocol_docs.py`"


def test_the_page_covers_every_route_parameter_and_error_code(repo_root):
    text = (repo_root / "docs" / "protocol.md").read_text(encoding="utf-8")
    routes = [value for name, value in vars(protocol).items() if name.startswith("ROUTE_")]
    assert all(f"`{route}`" in text for route in routes)
    assert all(f"| `{name}` |" in text for name in protocol.PARAM_NAMES)
    codes = [value for name, value in vars(protocol.ErrorCode).items() if not name.startswith("_")]
    assert all(f"`{code}`" in text for code in codes)


def test_the_check_mode_says_what_to_run(repo_root, tmp_path):
    done = subprocess.run([sys.executable, str(repo_root / "tools" / "protocol_docs.py"), "--check"],
                          capture_output=True, text=True, cwd=repo_root)
    assert done.returncode == 0, done.stderr
