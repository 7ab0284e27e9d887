"""The `--ray` flags of `serve` and `batch` (argparse only: no Ray import here)."""
from __future__ import annotations

from ..errors import InputError


def add_ray_options(parser, *, serve: bool) -> None:
    group = parser.add_argument_group("Ray cluster (needs the ray extra; docs/scaling.md)")
    group.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="run on the Ray cluster at ADDRESS (e.g. 10.0.0.5:6379, or auto on a cluster node); "
                            "'local' starts a private cluster on this machine for this run")
    group.add_argument("--ray-gpus", type=float, default=None, metavar="N",
                       help="with --ray local: the GPUs the private cluster declares (default: those found); "
                            "logical GPUs on a machine without one run the model on the CPU")
    group.add_argument("--ray-cpus", type=int, default=None, metavar="N",
                       help="with --ray local: the CPUs the private cluster declares (default: all)")
    group.add_argument("--replicas", type=int, default=None, metavar="N",
                       help="model copies (default: one per GPU of the cluster)")
    group.add_argument("--gpus-per-replica", type=float, default=1.0, metavar="G",
                       help="GPUs per model copy; fractions share a GPU, e.g. 0.5 for two on one (default 1)")
    group.add_argument("--cpus-per-replica", type=float, default=1.0, metavar="C",
                       help="CPUs Ray reserves per model copy (default 1)")
    if serve:
        group.add_argument("--min-replicas", type=int, default=None, metavar="N",
                           help="autoscale between --min-replicas and --max-replicas by the jobs waiting")
        group.add_argument("--max-replicas", type=int, default=None, metavar="N", help="see --min-replicas")


_CLUSTER_ONLY = ("ray_gpus", "ray_cpus", "replicas", "min_replicas", "max_replicas")


def ray_requested(args) -> bool:
    """True with --ray; InputError for flags that mean something only with it."""
    if getattr(args, "ray", None) is not None:
        return True
    given = [name for name in _CLUSTER_ONLY if getattr(args, name, None) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(f"{flags} describe(s) a Ray cluster: add --ray local (this machine) or --ray ADDRESS")
    return False
