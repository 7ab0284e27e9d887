"""Fixtures of the Ray tests: one simulated cluster per session with two logical GPUs.

The cluster is a `ray.cluster_utils.Cluster` (real Ray processes on this machine; its GPUs are
logical, so the tiny random-weights model runs on the CPU). This process never joins it: the
server (`serve --ray ADDRESS`) and batch runs (`batch --ray ADDRESS`) are child processes that
do, as a person's would (ray_harness.py).
"""
import os

import pytest
from ray_harness import NODE_ARGS

# Every Ray process of the tests (this one's cluster and the servers and batch runs it starts)
# takes the loopback address as its node address, so no test traffic leaves 127.0.0.1.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"


@pytest.fixture(scope="session")
def cluster():
    """The session's cluster: one head node with two logical GPUs (tests may add nodes)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={**NODE_ARGS, "num_gpus": 2, "include_dashboard": False})
    yield cluster
    cluster.shutdown()


@pytest.fixture(scope="session")
def cat_png(data_dir) -> bytes:
    return (data_dir / "testset" / "cat.png").read_bytes()
