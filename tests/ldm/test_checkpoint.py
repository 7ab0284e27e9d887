"""Checkpoint reading, strict loading, conversion and the errors a person sees."""
import os
import stat
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import ldm
from ldm.checkpoint import CheckpointError, convert_checkpoint, load_checkpoint, read_state_dict
from ldm.modules.clip_vision import CLIP_MEAN, CLIP_STD

# CLIP text-side leftovers as the reference saves them (values and shapes are arbitrary here).
TEXT_LEFTOVERS = {
    "clip_image_encoder.model.token_embedding.weight": (16, 64),
    "clip_image_encoder.model.positional_embedding": (8, 64),
    "clip_image_encoder.model.ln_final.weight": (64,),
    "clip_image_encoder.model.ln_final.bias": (64,),
    "clip_image_encoder.model.text_projection": (64, 64),
    "clip_image_encoder.model.logit_scale": (),
}


@pytest.fixture(scope="module")
def golden_dir(data_dir) -> Path:
    return Path(os.environ.get("GLIMPSE_GOLDEN_DIR", data_dir / "golden" / "tiny"))


@pytest.fixture
def make_model(golden_dir):
    """The tiny SyncDreamer (golden config, random weights) as ldm.build_model makes it."""
    def make(device="cpu", dtype=torch.float32):
        return ldm.build_model(golden_dir / "tiny_config.yaml", device=device, dtype=dtype)
    return make


@pytest.fixture
def source_state(make_model):
    """A random-weight state dict as the reference saves it: with CLIP's text-side leftovers."""
    torch.manual_seed(0)
    state = OrderedDict(make_model().state_dict())
    for key, shape in TEXT_LEFTOVERS.items():
        state[key] = torch.randn(shape)
    return state


def _lightning_checkpoint(state):
    """Plain-typed extras that Lightning writes beside the weights (all weights_only-safe)."""
    return {"epoch": 3, "global_step": 80000, "pytorch-lightning_version": "1.9.0",
            "state_dict": state,
            "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(3)}},
                                  "param_groups": [{"lr": 5e-5, "params": [0]}]}],
            "lr_schedulers": [{"base_lrs": [5e-5], "last_epoch": 80000}],
            "callbacks": {"ModelCheckpoint{'monitor': None}": {"best_model_path": "last.ckpt"}}}


def _assert_loaded(model, state, atol=0.0):
    loaded = model.state_dict()
    assert set(loaded) == set(state) - set(TEXT_LEFTOVERS)
    for key, value in loaded.items():
        assert value.dtype == torch.float32, key
        assert torch.allclose(value, state[key].float(), atol=atol, rtol=0), key


# --------------------------------------------------------------------------- formats that load


def test_lightning_ckpt_loads_strictly_and_drops_text_leftovers(tmp_path, make_model, source_state):
    path = tmp_path / "model.ckpt"
    torch.save(_lightning_checkpoint(source_state), path)
    model = make_model()
    info = load_checkpoint(model, path)
    _assert_loaded(model, source_state)
    assert info.path == str(path.resolve()) and info.format == "torch"
    assert info.num_keys == len(source_state) and info.file_dtype == "float32"
    assert sorted(info.dropped_keys) == sorted(TEXT_LEFTOVERS)
    assert info.seconds >= 0 and info.assigned is False
    assert info.as_dict()["num_keys"] == len(source_state)


def test_bare_state_dict_without_leftovers_loads(tmp_path, make_model, source_state):
    path = tmp_path / "bare.pt"
    bare = {k: v for k, v in source_state.items() if k not in TEXT_LEFTOVERS}
    torch.save(bare, path)
    model = make_model()
    info = load_checkpoint(model, path)
    _assert_loaded(model, source_state)
    assert info.dropped_keys == []


def test_float16_checkpoint_is_cast_to_the_model_dtype(tmp_path, make_model, source_state):
    path = tmp_path / "half.ckpt"
    torch.save({"state_dict": {k: v.half() for k, v in source_state.items()}}, path)
    model = make_model()
    info = load_checkpoint(model, path)
    assert info.file_dtype == "float16"
    _assert_loaded(model, {k: v.half() for k, v in source_state.items()})


def test_legacy_torch_format_loads(tmp_path, make_model, source_state):
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": source_state}, path, _use_new_zipfile_serialization=False)
    model = make_model()
    assert load_checkpoint(model, path).format == "torch-legacy"
    _assert_loaded(model, source_state)


def test_convert_full_precision_gives_identical_weights(tmp_path, make_model, source_state):
    src = tmp_path / "model.ckpt"
    torch.save(_lightning_checkpoint(source_state), src)
    dst = convert_checkpoint(src, tmp_path / "out" / "model.safetensors")
    assert dst == (tmp_path / "out" / "model.safetensors").absolute()
    assert [p.name for p in dst.parent.iterdir()] == ["model.safetensors"]  # no partial files left
    assert stat.S_IMODE(dst.stat().st_mode) == stat.S_IMODE(src.stat().st_mode)
    with safe_open(str(dst), framework="pt") as f:
        metadata = f.metadata()
        assert not set(TEXT_LEFTOVERS) & set(f.keys())
    assert metadata["format"] == "pt" and metadata["source"] == "model.ckpt"
    assert set(metadata["dropped_keys"].split(",")) == set(TEXT_LEFTOVERS)
    model = make_model()
    info = load_checkpoint(model, dst)
    assert info.format == "safetensors" and info.dropped_keys == []
    _assert_loaded(model, source_state)


def test_convert_half_keeps_top_level_buffers_in_float32(tmp_path, make_model, source_state):
    src = tmp_path / "model.ckpt"
    torch.save({"state_dict": source_state}, src)
    dst = convert_checkpoint(src, tmp_path / "model-fp16.safetensors", half=True)
    stored = read_state_dict(dst)
    assert stored["alphas_cumprod"].dtype == torch.float32
    assert stored["first_stage_model.encoder.conv_in.weight"].dtype == torch.float16
    model = make_model()
    load_checkpoint(model, dst)
    _assert_loaded(model, source_state, atol=2e-3)
    assert torch.equal(model.alphas_cumprod, source_state["alphas_cumprod"])
    assert dst.stat().st_size < 0.6 * src.stat().st_size


def test_meta_model_is_filled_by_assignment_with_constants_rebuilt(tmp_path, make_model, source_state):
    dst = tmp_path / "model.safetensors"
    torch.save({"state_dict": source_state}, tmp_path / "model.ckpt")
    convert_checkpoint(tmp_path / "model.ckpt", dst)
    model = make_model(device="meta")
    info = load_checkpoint(model, dst)
    assert info.assigned
    assert not any(t.is_meta for t in list(model.parameters()) + list(model.buffers()))
    _assert_loaded(model, source_state)
    clip = model.clip_image_encoder
    assert torch.equal(clip.mean, torch.tensor(CLIP_MEAN)) and torch.equal(clip.std, torch.tensor(CLIP_STD))
    reference = make_model()
    load_checkpoint(reference, dst)
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(clip.encode(image), reference.clip_image_encoder.encode(image))


def test_meta_model_in_half_precision_gets_half_weights(tmp_path, make_model, source_state):
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": source_state}, path)
    model = make_model(device="meta", dtype=torch.float16)
    load_checkpoint(model, path)
    weight = model.first_stage_model.encoder.conv_in.weight
    assert weight.dtype == torch.float16 and not weight.is_meta
    assert torch.equal(weight, source_state["first_stage_model.encoder.conv_in.weight"].half())
    # the model keeps its schedule in float32; the loader casts per tensor, to the model's dtype
    assert torch.equal(model.alphas_cumprod, source_state["alphas_cumprod"])


def test_golden_tiny_state_dict_loads_strictly_into_the_built_model(golden_dir, make_model):
    path = golden_dir / "tiny_state_dict.pt"
    golden = torch.load(path, weights_only=True)
    for device in ("cpu", "meta"):
        model = make_model(device=device)
        info = load_checkpoint(model, path)
        assert info.num_keys == len(golden) and sorted(info.dropped_keys) == sorted(TEXT_LEFTOVERS)
        loaded = model.state_dict()
        assert set(loaded) == set(golden) - set(TEXT_LEFTOVERS)
        assert all(torch.equal(value, golden[key]) for key, value in loaded.items())


# --------------------------------------------------------------------------- errors a person sees


def test_missing_file_says_where_it_looked_and_how_to_get_it(tmp_path, make_model):
    path = tmp_path / "nowhere" / "syncdreamer-pretrain.ckpt"
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(make_model(), path)
    message = str(err.value)
    assert str(path) in message
    assert "python -m inference_server download" in message
    assert "camenduru/SyncDreamer" in message and "syncdreamer-pretrain.ckpt" in message
    assert "ckpt/syncdreamer-pretrain.ckpt" in message and ".cache/glimpse3d" in message


def test_truncated_file_is_reported(tmp_path, make_model, source_state):
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": source_state}, good)
    data = good.read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_checkpoint(make_model(), bad)
    assert str(bad) in str(err.value) and "download it again" in str(err.value)


def test_truncated_safetensors_is_reported(tmp_path, make_model, source_state):
    torch.save({"state_dict": source_state}, tmp_path / "m.ckpt")
    good = convert_checkpoint(tmp_path / "m.ckpt", tmp_path / "m.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(make_model(), bad)


@pytest.mark.parametrize("content, expected", [
    (os.urandom(4096), "not a checkpoint"),
    (b"", "is empty"),
    (b"<!DOCTYPE html><html><body>Virus scan warning</body></html>", "web page"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
])
def test_files_that_are_not_checkpoints_are_named_as_such(tmp_path, make_model, content, expected):
    path = tmp_path / "syncdreamer-pretrain.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(make_model(), path)


def test_zip_archive_is_not_mistaken_for_a_checkpoint(tmp_path, make_model):
    path = tmp_path / "download.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ckpt/syncdreamer-pretrain.ckpt", b"weights")
    with pytest.raises(CheckpointError, match="zip archive, not a PyTorch checkpoint"):
        load_checkpoint(make_model(), path)


def test_file_of_another_model_counts_and_names_keys(tmp_path, make_model, source_state):
    other = {"cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": torch.zeros(2)}
    other.update({k: v for k, v in source_state.items() if not k.startswith("first_stage_model.decoder.")})
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": other}, path)
    missing = [k for k in source_state if k.startswith("first_stage_model.decoder.")]
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(make_model(), path)
    message = str(err.value)
    assert f"{len(missing)} of the model's" in message and missing[0] in message
    assert "1 keys in the file are not in the model" in message
    assert "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight" in message


def test_wrong_shape_names_key_and_both_shapes(tmp_path, make_model, source_state):
    state = dict(source_state)
    state["first_stage_model.quant_conv.weight"] = torch.zeros(8, 8, 3, 3)
    path = tmp_path / "shape.ckpt"
    torch.save({"state_dict": state}, path)
    model = make_model()
    before = model.first_stage_model.encoder.conv_in.weight.clone()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, path)
    message = str(err.value)
    assert "first_stage_model.quant_conv.weight: file (8, 8, 3, 3), model (8, 8, 1, 1)" in message
    assert torch.equal(model.first_stage_model.encoder.conv_in.weight, before)  # nothing half-loaded


class NotATensor:
    """Stands for the arbitrary objects (configs, paths) a full Lightning checkpoint may pickle."""

    def __init__(self, value):
        self.value = value


def test_pickled_objects_are_refused_with_conversion_hint(tmp_path, make_model, source_state):
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": source_state, "hyper_parameters": NotATensor(1)}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(make_model(), path)
    message = str(err.value)
    assert "pickled Python objects besides tensors" in message and "NotATensor" in message
    assert f"python -m inference_server convert {path}" in message and "--trust-pickle" in message
    with pytest.raises(CheckpointError, match="--trust-pickle"):
        convert_checkpoint(path, tmp_path / "refused.safetensors")
    assert not (tmp_path / "refused.safetensors").exists()


def test_trusted_pickle_converts_and_then_loads_safely(tmp_path, make_model, source_state):
    src = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": source_state, "hyper_parameters": NotATensor(1)}, src)
    dst = convert_checkpoint(src, tmp_path / "safe.safetensors", trust_pickle=True)
    model = make_model()
    load_checkpoint(model, dst)
    _assert_loaded(model, source_state)


def test_convert_refuses_other_suffix_and_leaves_nothing_on_failure(tmp_path, monkeypatch, source_state):
    src = tmp_path / "model.ckpt"
    torch.save({"state_dict": source_state}, src)
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        convert_checkpoint(src, tmp_path / "model.bin")

    def fail_midway(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("safetensors.torch.save_file", fail_midway)
    with pytest.raises(CheckpointError, match="No space left on device"):
        convert_checkpoint(src, tmp_path / "model.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]


def test_official_key_list_loads_strictly_into_the_full_model(repo_root, data_dir):
    """The released checkpoint's 1618 keys and shapes (reference/state_dict_keys.tsv) fit the full
    model exactly, with only CLIP's six text-side leftovers dropped. Zero-stride tensors stand in
    for the weights, so nothing of full size is allocated."""
    state = {}
    for line in (data_dir / "reference" / "state_dict_keys.tsv").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, shape, _ = line.split("\t")
        shape = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
        state[key] = torch.zeros(()).expand(shape)
    assert len(state) == 1618
    model = ldm.build_model(repo_root / "configs" / "syncdreamer.yaml", device="meta")
    info = ldm.load_state_dict_strict(model, state)
    assert info.num_keys == 1618 and sorted(info.dropped_keys) == sorted(TEXT_LEFTOVERS)
    assert info.assigned and not any(t.is_meta for t in model.state_dict().values())
    assert torch.equal(model.clip_image_encoder.mean, torch.tensor(CLIP_MEAN))
