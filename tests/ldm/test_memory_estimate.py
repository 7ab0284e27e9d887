"""The GPU-memory estimate (ldm.memory_estimate): its tensor accounting is exact on known
operations, and the full model's estimates stay within the issue's targets, so a change that
would blow the GPU budget fails here, on a machine without a GPU."""
import torch

from ldm.memory_estimate import LiveTensorBytes, estimate_generation_memory

MB = 1024 * 1024


def test_live_bytes_follow_creation_views_in_place_ops_and_release():
    tracker = LiveTensorBytes()
    with tracker:
        a = torch.empty(MB, dtype=torch.uint8, device="meta")       # 1 MB
        b = a.to(torch.float16)                                      # 2 MB more
        view = b.view(2, -1)                                         # a view: nothing new
        b.add_(1)                                                    # in place: nothing new
        del a
        c = b * 2                                                    # 2 MB: b and c, 4 MB
        del b, view, c
    assert tracker.peak == 4 * MB   # a was gone before c came: never 5 MB
    assert tracker.live == 0


def test_full_model_estimates_stay_within_the_targets(repo_root):
    config = repo_root / "configs" / "syncdreamer.yaml"
    default = estimate_generation_memory(config, torch.float16, samples=1, batch_view_num=16)
    low = estimate_generation_memory(config, torch.float16, samples=1, batch_view_num=4, low_memory=True)
    four = estimate_generation_memory(config, torch.float16, samples=4, batch_view_num=16)
    print(f"\nestimated peak GPU memory: default {default.peak_gb:.2f} GB {default.phases_gb}, low-memory "
          f"{low.peak_gb:.2f} GB {low.phases_gb}, 4 samples {four.peak_gb:.2f} GB")
    assert 2.7 < default.weights_gb < 2.8     # 1.39 B parameters in float16 (+ float32 buffers)
    assert default.peak_gb < 6.0              # the target for one sample with the defaults
    assert low.weights_gb < default.weights_gb - 0.7   # CLIP and the VAE wait in main memory
    assert low.peak_gb < 4.0                  # the target of the low-memory mode
    assert four.phases_gb["denoising step"] > 3 * default.phases_gb["denoising step"]
