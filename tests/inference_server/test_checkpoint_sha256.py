"""cameras.json names the checkpoint's sha256 (the contract's model.checkpoint_sha256), so a set
says which weights made it; null only for random weights."""
import hashlib

import ldm
from inference_server.generation.params import GenerationParams
from inference_server.generation.service import GenerationResult, SyncDreamerService


def metadata_of(service):
    result = GenerationResult(views=[], model_input=None, background="keep", params=GenerationParams(), seconds=0.0)
    return service.set_metadata(result, 0, "input.png")


def test_cameras_json_names_the_checkpoint_sha256(tmp_path, data_dir, repo_root):
    checkpoint = ldm.convert_checkpoint(data_dir / "golden" / "tiny" / "tiny_state_dict.pt",
                                        tmp_path / "tiny.safetensors", trust_pickle=True)
    service = SyncDreamerService(config_path=repo_root / "configs" / "tiny.yaml", checkpoint_path=checkpoint,
                                 device="cpu")
    service.load_model()
    expected = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert metadata_of(service)["model"]["checkpoint_sha256"] == expected
    service.unload_model()
    service.load_model()  # loading again keeps the same answer
    assert metadata_of(service)["model"]["checkpoint_sha256"] == expected


def test_random_weights_have_no_checkpoint_sha256():
    service = SyncDreamerService(random_weights=True, device="cpu")
    assert metadata_of(service)["model"]["checkpoint_sha256"] is None
