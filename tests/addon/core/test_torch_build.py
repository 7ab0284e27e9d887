"""Install Server's choice of torch build for each platform and driver case (no bpy)."""
import pytest

from glimpse_syncdreamer_addon.core.torch_build import (CPU, CUDA, MPS, ROCM, MachineInfo, choose_torch_build,
                                                        parse_nvidia_smi)

PIN = "torch==2.13.0"
INDEX = "https://download.pytorch.org/whl/"


def linux(**gpu):
    return MachineInfo("Linux", "x86_64", **gpu)


@pytest.mark.parametrize("cuda, build", [
    ((13, 1), "cu130"), ((13, 0), "cu130"),
    ((12, 9), "cu128"), ((12, 8), "cu128"),
    ((12, 7), "cu126"), ((12, 6), "cu126"),
])
def test_nvidia_gets_the_newest_cuda_build_its_driver_runs(cuda, build):
    chosen = choose_torch_build(linux(nvidia_cuda=cuda, nvidia_driver="580.65"), PIN)
    assert (chosen.name, chosen.device, chosen.requirement, chosen.index_url) == (build, CUDA, PIN, INDEX + build)
    assert "580.65" in chosen.reason


@pytest.mark.parametrize("cuda", [(11, 8), (12, 0), (12, 4)])
def test_a_driver_for_cuda_11_8_to_12_5_gets_the_last_torch_built_for_cuda_11_8(cuda):
    chosen = choose_torch_build(linux(nvidia_cuda=cuda, nvidia_driver="520.61"), PIN)
    assert (chosen.name, chosen.device, chosen.requirement) == ("cu118", CUDA, "torch==2.7.1")
    assert chosen.index_url == INDEX + "cu118" and "Update the driver" in chosen.reason


def test_a_driver_older_than_cuda_11_8_gets_the_cpu_build_and_says_why():
    chosen = choose_torch_build(linux(nvidia_cuda=(11, 4), nvidia_driver="470.1"), PIN)
    assert (chosen.device, chosen.index_url, chosen.requirement) == (CPU, INDEX + "cpu", PIN)
    assert "too old" in chosen.reason and "Update the driver" in chosen.reason


def test_no_driver_no_gpu_linux_and_windows_get_the_cpu_index():
    for machine in (linux(), MachineInfo("Windows", "amd64")):
        chosen = choose_torch_build(machine, PIN)
        assert (chosen.name, chosen.device, chosen.index_url, chosen.requirement) == ("cpu", CPU, INDEX + "cpu", PIN)


def test_windows_with_nvidia_gets_cuda():
    chosen = choose_torch_build(MachineInfo("Windows", "amd64", nvidia_cuda=(12, 8), nvidia_driver="572.16"), PIN)
    assert (chosen.name, chosen.device) == ("cu128", CUDA)


def test_amd_on_linux_gets_rocm_and_elsewhere_the_cpu():
    chosen = choose_torch_build(linux(amd_gpu=True), PIN)
    assert chosen.device == ROCM and chosen.index_url.startswith(INDEX + "rocm") and chosen.requirement == PIN
    windows = choose_torch_build(MachineInfo("Windows", "amd64", amd_gpu=True), PIN)
    assert windows.device == CPU and "Linux only" in windows.reason


def test_nvidia_wins_over_amd_when_both_are_there():
    assert choose_torch_build(linux(nvidia_cuda=(12, 8), amd_gpu=True), PIN).device == CUDA


def test_apple_silicon_gets_the_standard_build_on_mps_and_intel_macs_the_last_x86_build():
    arm = choose_torch_build(MachineInfo("Darwin", "arm64"), PIN)
    assert (arm.device, arm.index_url, arm.requirement, arm.label) == (MPS, None, PIN, "Apple GPU (MPS)")
    intel = choose_torch_build(MachineInfo("Darwin", "x86_64"), PIN)
    assert (intel.device, intel.index_url, intel.requirement) == (CPU, None, "torch==2.2.2")


def test_linux_arm_takes_the_standard_build_on_the_cpu():
    chosen = choose_torch_build(MachineInfo("Linux", "aarch64"), PIN)
    assert (chosen.device, chosen.index_url) == (CPU, None)


def test_force_cpu_overrides_any_gpu():
    for machine in (linux(nvidia_cuda=(12, 8)), linux(amd_gpu=True)):
        chosen = choose_torch_build(machine, PIN, force_cpu=True)
        assert (chosen.device, chosen.index_url) == (CPU, INDEX + "cpu")
    assert choose_torch_build(MachineInfo("Darwin", "arm64"), PIN, force_cpu=True).device == CPU


def test_nvidia_smi_header_is_read():
    header = ("| NVIDIA-SMI 550.54.14              Driver Version: 550.54.14      CUDA Version: 12.4     |\n"
              "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |")
    assert parse_nvidia_smi(header) == ((12, 4), "550.54.14")
    assert parse_nvidia_smi("") == (None, "")
    assert parse_nvidia_smi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver") == (None, "")
