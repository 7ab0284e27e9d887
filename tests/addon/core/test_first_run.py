"""The first-run guide's next step, and the CPU time said before a run (no bpy)."""
from glimpse_syncdreamer_addon.core.cpu_estimate import cpu_estimate_text, cpu_seconds, runs_on_cpu
from glimpse_syncdreamer_addon.core.first_run import (DOWNLOAD_CHECKPOINT, INSTALL_SERVER, RANDOM_WEIGHTS,
                                                      checkpoint_found, next_steps, python_lacking)
from glimpse_syncdreamer_addon.core.setup_check import MISSING, OK, WARNING, CheckItem

ENV = "/data/glimpse3d/server-env/bin/python"


def ops(**state):
    base = dict(python="", env_python=ENV, env_complete=False, checkpoint_found=False, random_weights=False)
    return [step.operator for step in next_steps(**{**base, **state})]


def test_fresh_user_folder_install_first_then_the_checkpoint_or_random_weights():
    assert ops() == [INSTALL_SERVER, DOWNLOAD_CHECKPOINT, RANDOM_WEIGHTS]


def test_an_unfinished_install_asks_to_finish_it():
    steps = next_steps(python=ENV, env_python=ENV, env_complete=False, checkpoint_found=True, random_weights=False)
    assert [(s.operator, s.text) for s in steps] == [(INSTALL_SERVER, "Finish Installing Server")]


def test_once_installed_only_the_checkpoint_is_left_and_random_weights_ends_the_guide():
    assert ops(python=ENV, env_complete=True) == [DOWNLOAD_CHECKPOINT, RANDOM_WEIGHTS]
    assert ops(python=ENV, env_complete=True, random_weights=True) == []
    assert ops(python=ENV, env_complete=True, checkpoint_found=True) == []


def test_a_python_of_the_users_own_is_left_alone_until_check_setup_finds_it_lacking():
    assert ops(python="/usr/bin/python3", checkpoint_found=True) == []
    assert ops(python="/usr/bin/python3", checkpoint_found=True, python_unusable=True) == [INSTALL_SERVER]
    repair = next_steps(python=ENV, env_python=ENV, env_complete=True, checkpoint_found=True, random_weights=False,
                        python_unusable=True)
    assert [step.text for step in repair] == ["Repair Server"]


def test_python_lacking_reads_check_setup_but_not_the_checkpoint_or_output_folder():
    no_torch = CheckItem(MISSING, "torch", "cannot be imported (ModuleNotFoundError)")
    no_checkpoint = CheckItem(MISSING, "checkpoint", "not set")
    assert python_lacking([CheckItem(OK, "server Python", "/usr/bin/python3"), no_torch])
    assert not python_lacking([no_checkpoint, CheckItem(MISSING, "output folder", "not writable")])
    assert not python_lacking(None)


def test_checkpoint_found_from_the_preference_or_the_servers_places(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    assert not checkpoint_found(str(ckpt), [])
    ckpt.write_bytes(b"x")
    assert checkpoint_found(str(ckpt), [])
    assert checkpoint_found("", ["", tmp_path / "nothing", ckpt])
    assert not checkpoint_found("", ["", tmp_path / "nothing"])


def test_cpu_estimate_from_the_measured_figures():
    # full model: 50 steps x 55.6 s + 60 s decode + 4.5 s start
    assert round(cpu_seconds(50)) == round(4.5 + 50 * 55.6 + 60)
    assert cpu_estimate_text(50) == "On the CPU: about 47 min (50 steps, full model; measured on 2 CPU cores)"
    assert cpu_estimate_text(50, 2, random_weights=True) == \
        "On the CPU: about 2 min (50 steps, 2 sets, miniature, random weights; measured on 2 CPU cores)"
    assert cpu_estimate_text(2, random_weights=True).startswith("On the CPU: about 8 s")


def test_runs_on_cpu_from_the_preference_the_installed_build_or_check_setup():
    assert runs_on_cpu("cpu") and not runs_on_cpu("cuda", "cpu")
    assert runs_on_cpu("auto", "cpu") and not runs_on_cpu("auto", "cuda")
    no_gpu = CheckItem(WARNING, "device", "no GPU: generation runs on the CPU and takes a long time")
    assert runs_on_cpu("auto", "", [no_gpu]) and not runs_on_cpu("auto", "", [CheckItem(OK, "device", "CUDA: H200")])
    assert not runs_on_cpu("auto")
