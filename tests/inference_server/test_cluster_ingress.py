"""The Ray ingress answers /v1/health on the head node while no model replica runs (starting, or
autoscaled to zero): without torch, without the checkpoint and GPU that only the GPU nodes have,
reporting the model as it was asked for. Runs without Ray: the ingress's app over a job store
that has no replicas."""
import json
import subprocess
import sys

PROBE = """
import json, sys
from inference_server.cluster.serve_app import ClusterPipeline, ClusterService
from inference_server.server.app import create_app
from inference_server.server.jobs import JobManager
from inference_server.server.settings import ServerSettings


class StoreWithoutReplicas(JobManager):
    # what RayJobStore answers while the model deployment has no replica
    def model_info(self):
        return None

    def cluster(self):
        return {"replicas": [], "replica_count": 0, "gpus": []}


jobs = StoreWithoutReplicas(runner=None)
options = {"checkpoint_path": "/only/on/the/gpu/nodes/syncdreamer-pretrain.ckpt", "device": "cuda:1",
           "precision": "float16", "random_weights": False}
app = create_app(ClusterPipeline(ClusterService(jobs, options)), "token", ServerSettings(output_root=sys.argv[1]),
                 jobs=jobs, manage_lifecycle=False)
health = app.state.server.health()
print(json.dumps({"health": health, "torch": "torch" in sys.modules}))
"""


def test_health_while_no_replica_runs_needs_no_model_on_the_head_node(repo_root, tmp_path):
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path)], cwd=repo_root, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["torch"] is False
    health = answer["health"]
    assert health["model_loaded"] is False and health["device"] == "cuda:1" and health["precision"] == "float16"
    assert health["checkpoint"] == "/only/on/the/gpu/nodes/syncdreamer-pretrain.ckpt"
    assert health["cluster"]["replica_count"] == 0
