"""Every code example in README.md and docs/*.md runs as written.

The convention (docs/development.md, "Examples in the docs"):
- every ```python block and every ```bash block runs, unless the nearest non-blank line above
  its opening fence is the HTML comment `<!-- norun: why -->` (invisible on the rendered page);
- blocks in any other language (json, text, console output) are never run;
- a page's blocks run in order, in one scratch folder that mirrors the repository's top level
  (`examples/`, `configs/`, `.venv/` ... are links to the checkout), so an example may use what an
  earlier one on the same page wrote, and nothing lands in the checkout;
- python blocks run with the project's Python (this test's interpreter, `.venv/bin/python`
  under `make test`); bash blocks run with `bash -e` and a PATH without the project's
  environment, so they must say `.venv/bin/python` or `source .venv/bin/activate` first;
- HOME is a scratch folder too: what an example writes under ~ goes away with it.

New pages are picked up by themselves: every docs/*.md is a test case.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNNABLE_LANGUAGES = ("python", "bash")
NORUN = re.compile(r"^<!--\s*norun\b.*-->$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>`{3,})(?P<language>[\w+-]*)\s*$")
BLOCK_TIMEOUT_S = 900


@dataclass
class Example:
    page: str
    line: int          # of the opening fence, 1-based
    language: str
    code: str
    runs: bool


def doc_pages(root: Path = REPO_ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def examples_in(text: str, page: str = "page") -> list[Example]:
    """The fenced code blocks of a Markdown text, in order."""
    lines = text.splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, ticks = len(opening["indent"]), opening["ticks"]
        body, end = [], index + 1
        while end < len(lines):
            closing = FENCE.match(lines[end])
            if closing and closing["ticks"] == ticks and not closing["language"]:
                break
            body.append(lines[end][indent:] if lines[end][:indent].strip() == "" else lines[end])
            end += 1
        else:
            raise ValueError(f"{page}:{index + 1}: the code block opened here is never closed")
        previous = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        language = opening["language"].lower()
        found.append(Example(page, index + 1, language, "\n".join(body) + "\n",
                             runs=language in RUNNABLE_LANGUAGES and not NORUN.match(previous)))
        index = end + 1
    return found


def stray_norun_markers(text: str) -> list[int]:
    """Lines of `<!-- norun -->` markers that stand before no code block (a typo would hide one)."""
    lines = text.splitlines()
    stray = []
    for index, line in enumerate(lines):
        if NORUN.match(line.strip()):
            following = next((later for later in lines[index + 1:] if later.strip()), "")
            if not FENCE.match(following):
                stray.append(index + 1)
    return stray


def scratch_checkout(folder: Path) -> Path:
    """A folder that looks like the checkout's root to an example, and keeps what it writes."""
    folder.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name not in (".git", "dist", "demo_output", "out"):
            (folder / entry.name).symlink_to(entry)
    return folder


def example_environment(home: Path) -> dict:
    """The environment of a reader's fresh shell: no project environment on the PATH, and a
    scratch home, so that what an example puts under ~ (caches, outputs) goes away with it."""
    env = dict(os.environ)
    venv_bin = Path(sys.executable).parent.resolve()
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and Path(p).resolve() != venv_bin)
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    return env


def run_example(example: Example, cwd: Path) -> subprocess.CompletedProcess:
    if example.language == "python":
        command = [sys.executable, "-c", example.code]
    else:
        command = ["bash", "-e", "-c", example.code]
    process = subprocess.Popen(command, cwd=cwd, env=example_environment(cwd.parent / "home"), text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=BLOCK_TIMEOUT_S)
    finally:
        # whatever the example left running in the background (a server) ends with it
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


# --- the convention itself (fast) ---------------------------------------------------------------

def test_blocks_are_found_with_their_language_and_marker():
    page = "\n".join([
        "# Title", "", "```python", "print('runs')", "```", "",
        "<!-- norun: needs a GPU -->", "", "```bash", "nvidia-smi", "```",
        "```json", '{"a": 1}', "```",
        "1. a step", "   ```bash", "   echo indented", "   ```",
    ])
    examples = examples_in(page)
    assert [(e.language, e.runs, e.line) for e in examples] == [
        ("python", True, 3), ("bash", False, 9), ("json", False, 12), ("bash", True, 16)]
    assert examples[3].code == "echo indented\n"
    assert stray_norun_markers(page) == []
    assert stray_norun_markers("<!-- norun -->\n\nsome text\n```bash\nls\n```\n") == [1]
    with pytest.raises(ValueError, match="never closed"):
        examples_in("```python\nprint(1)\n")


def test_every_page_parses_and_has_no_stray_markers():
    pages = doc_pages()
    assert (REPO_ROOT / "docs" / "index.md") in pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        examples_in(text, page.name)
        assert stray_norun_markers(text) == [], f"{page.name}: a norun marker stands before no code block"


# --- the examples (slow: they run the tiny model) -----------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_example_on_the_page_runs(page, tmp_path):
    runnable = [e for e in examples_in(page.read_text(encoding="utf-8"), page.name) if e.runs]
    if not runnable:
        return  # a page without runnable examples has nothing to prove
    cwd = scratch_checkout(tmp_path / "checkout")
    for example in runnable:
        result = run_example(example, cwd)
        assert result.returncode == 0, (
            f"{page.relative_to(REPO_ROOT)}:{example.line}: this {example.language} example failed "
            f"(exit {result.returncode})\n--- code\n{example.code}--- stdout\n{result.stdout[-3000:]}"
            f"\n--- stderr\n{result.stderr[-3000:]}")
