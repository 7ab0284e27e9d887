"""How many model replicas `serve --ray` starts, from the flags and the cluster's GPUs (no Ray needed)."""
from types import SimpleNamespace

import pytest

from inference_server.cluster.serve_ray import replica_counts
from inference_server.errors import InputError, SetupError


def flags(**given):
    return SimpleNamespace(**{"replicas": None, "min_replicas": None, "max_replicas": None,
                              "gpus_per_replica": 1.0, "cpus_per_replica": 1.0, **given})


def test_replicas_follow_the_gpus_unless_given():
    assert replica_counts(flags(), gpus=2) == (2, 2)  # one per GPU
    assert replica_counts(flags(gpus_per_replica=0.5), gpus=2) == (4, 4)  # two share a GPU
    assert replica_counts(flags(replicas=1), gpus=2) == (1, 1)
    assert replica_counts(flags(min_replicas=1, max_replicas=3), gpus=2) == (1, 3)  # autoscaling
    assert replica_counts(flags(min_replicas=0), gpus=2) == (0, 2)


@pytest.mark.parametrize("given, gpus, error, message", [
    ({"replicas": 3}, 2, InputError, "--replicas must be 1..2"),
    ({"replicas": 2, "max_replicas": 3}, 2, InputError, "either --replicas"),
    ({}, 0, SetupError, "has 0 GPU"),
    ({"min_replicas": 3, "max_replicas": 2}, 4, InputError, "--max-replicas must be at least"),
])
def test_impossible_counts_are_refused_before_anything_starts(given, gpus, error, message):
    with pytest.raises(error, match=message):
        replica_counts(flags(**given), gpus=gpus)
