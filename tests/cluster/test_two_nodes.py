"""A second node joins the session's cluster: one model replica per node, and one node is lost."""
import pytest
from ray_harness import NODE_ARGS, start_ray_server, stop_ray_server

from inference_server import protocol

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
LONG = {"steps": 20}  # still sampling when the node goes


def test_one_replica_per_node_and_the_server_survives_losing_a_node(cluster, cat_png, tmp_path):
    worker = cluster.add_node(**NODE_ARGS, num_gpus=2)
    server = None
    try:
        # each replica takes two GPUs: a node's worth, so the two replicas land on different nodes
        server = start_ray_server(cluster.address, tmp_path / "out", "--replicas", "2", "--gpus-per-replica", "2")
        replicas = server.json("GET", "/v1/health")["cluster"]["replicas"]
        assert sorted(replica["node_id"] for replica in replicas) == sorted({cluster.head_node.node_id,
                                                                             worker.node_id})

        jobs = [server.submit(cat_png, LONG) for _ in range(2)]
        for job in jobs:  # one job on each replica
            server.wait_for(job["id"], states=(protocol.SAMPLING,), timeout=300)
        cluster.remove_node(worker)

        finished = [server.wait_for(job["id"], timeout=300) for job in jobs]
        assert sorted(job["state"] for job in finished) == [protocol.DONE, protocol.FAILED]
        lost = next(job for job in finished if job["state"] == protocol.FAILED)
        assert lost["error"]["code"] == "replica_lost" and "Submit it again" in lost["error"]["message"]

        after = server.submit(cat_png)  # the surviving replica goes on taking jobs
        assert server.wait_for(after["id"], timeout=300)["state"] == protocol.DONE
        survivors = server.json("GET", "/v1/health")["cluster"]["replicas"]
        assert [replica["node_id"] for replica in survivors] == [cluster.head_node.node_id]
    finally:
        if worker in cluster.worker_nodes:  # the test failed before it removed the node
            cluster.remove_node(worker)
        if server is not None:
            assert stop_ray_server(server) == 0
