"""`python -m inference_server bench` (tools/bench.py) on the CPU with the tiny model: every figure
the issue asks for is printed and written, the figures agree with each other and with model_tools.flops,
and the speed is that of the pipeline users run (its phases add up to the run)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from model_tools.flops import count_generation_flops

REPO_ROOT = Path(__file__).resolve().parents[2]
STEPS = 2
pytestmark = pytest.mark.slow  # a few minutes on a CPU


def run_bench(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "inference_server", "bench", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = run_bench("--config", "configs/tiny.yaml", "--device", "cpu", "--steps", STEPS, "--samples", "1,2",
                     "--warmup", "1", "--repeats", "1", "--json", out)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


@pytest.mark.slow
def test_bench_prints_device_precision_and_versions(bench):
    stdout, results = bench
    env = results["environment"]
    assert env["device"] == "cpu" and env["precision"] == "float32" and env["torch"]
    assert f"torch {env['torch']}" in stdout and "precision  float32" in stdout


@pytest.mark.slow
def test_bench_times_each_batch_of_samples(bench):
    stdout, results = bench
    assert [row["samples"] for row in results["speed"]] == [1, 2]
    for row in results["speed"]:
        assert row["batch_views"] == 16
        phases = ("preparing", "sampling", "decoding", "writing")
        assert all(row[f"{phase}_seconds"] > 0 for phase in phases)
        assert row["seconds"] == pytest.approx(sum(row[f"{phase}_seconds"] for phase in phases))
        assert row["seconds_per_sample"] == pytest.approx(row["seconds"] / row["samples"])
        # 2 steps x 16 views x 2 guidance branches per sample
        assert row["unet_view_passes_per_s"] == pytest.approx(STEPS * 16 * 2 * row["samples"] / row["sampling_seconds"])
        assert row["peak_memory"]["kind"] == "process_rss" and row["peak_memory"]["allocated_gb"] > 0.1
        assert 0 < row["estimated_gpu_peak_gb"] < 1   # the miniature, float32
        flops = count_generation_flops(REPO_ROOT / "configs" / "tiny.yaml", STEPS, 2.0, samples=row["samples"],
                                       batch_view_num=16, fast_path=False).total
        assert row["tflops_reference"] == pytest.approx(flops / row["seconds"] / 1e12)
    assert "s/sample" in stdout and "UNet view-passes/s" in stdout and "TFLOP/s ref" in stdout
    assert "est. GPU GB" in stdout and "by phase of the pipeline: preparing" in stdout


@pytest.mark.slow
def test_bench_prints_the_analytic_flop_count(bench):
    stdout, results = bench
    reference = count_generation_flops(REPO_ROOT / "configs" / "tiny.yaml", STEPS, 2.0, batch_view_num=16,
                                       fast_path=False)
    executed = count_generation_flops(REPO_ROOT / "configs" / "tiny.yaml", STEPS, 2.0, batch_view_num=16)
    assert results["flops"]["reference"]["total"] == reference.total
    assert results["flops"]["executed"]["total"] == executed.total < reference.total
    assert f"{reference.total / 1e9:.1f} GFLOP of reference model work" in stdout


@pytest.mark.slow
def test_bench_times_loading_and_start_up_from_safetensors(bench):
    stdout, results = bench
    assert results["load"]["file"].endswith(".safetensors") and results["load"]["seconds"] > 0
    assert results["startup"]["seconds"] > 0 and "serve --preload" in results["startup"]["command"]
    assert "load:" in stdout and "start-up:" in stdout


@pytest.mark.slow
def test_bench_checks_half_precision_against_float32_at_every_step(bench):
    stdout, results = bench
    [accuracy] = results["accuracy"]
    assert accuracy["precision"] == "bfloat16"
    assert len(accuracy["errors"]) == STEPS and accuracy["timesteps"] == [501, 1]
    assert all(0 < error < 0.05 for error in accuracy["errors"])
    assert accuracy["max"] == max(accuracy["errors"])
    assert "bfloat16: max" in stdout


def test_bench_is_not_in_the_shipped_package():
    spec = importlib.util.spec_from_file_location("build_extension", REPO_ROOT / "scripts" / "build_extension.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    shipped = [name for _, name in build.collect_files(REPO_ROOT)]
    assert "inference_server/cli/main.py" in shipped
    assert not any("bench" in name for name in shipped)


@pytest.mark.parametrize("args,message", [
    (["--samples", "1,x"], "--samples takes whole numbers"),
    (["--steps", "0"], "must be at least 1"),
    (["--accuracy-precisions", "float64"], "--accuracy-precisions takes float16"),
    (["--compile", "fastest", "--no-accuracy"], "unknown compile mode 'fastest'"),
])
def test_bench_refuses_bad_options_with_a_message(args, message):
    done = run_bench("--config", "configs/tiny.yaml", "--device", "cpu", *args, timeout=300)
    assert done.returncode in (2, 3) and message in done.stderr
