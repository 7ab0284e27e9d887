"""The server as one Ray Serve application, for KubeRay's RayService and `serve run`.

    applications:
      - name: glimpse
        route_prefix: /
        import_path: inference_server.cluster.rayservice:build
        args: {replicas: 2, gpus_per_replica: 1, output_root: /data/glimpse-outputs}

Here no `serve --ray` process runs: Ray Serve starts the ingress (which starts the job store)
and the model replicas from this builder. The token comes from GLIMPSE_SERVER_TOKEN in the Ray
containers' environment. `args` (all optional): replicas, or min_replicas/max_replicas;
gpus_per_replica, cpus_per_replica; output_root, max_queue, max_body_mb, host (the name
clients use in the URL; default: any); checkpoint, config, random_weights, device, precision.
docs/scaling.md shows a RayService manifest.
"""
from __future__ import annotations

import os
from pathlib import Path

from .. import protocol
from ..errors import InputError, SetupError

_MODEL_ARGS = {"checkpoint": "checkpoint_path", "config": "config_path", "random_weights": "random_weights",
               "device": "device", "precision": "precision"}
_KNOWN = {"replicas", "min_replicas", "max_replicas", "gpus_per_replica", "cpus_per_replica", "output_root",
          "max_queue", "max_body_mb", "host", *_MODEL_ARGS}


def build(args: dict):
    """The Serve application (an ingress bound to the model deployment) for `args`."""
    from ray import serve

    from ..server.core import ServerSettings
    from .models import ModelSpec
    from .serve_app import ingress_deployment, model_deployment

    unknown = sorted(set(args) - _KNOWN)
    if unknown:
        raise InputError(f"unknown args {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}")
    token = os.environ.get(protocol.TOKEN_ENV, "").strip()
    if not token:
        raise SetupError(f"set {protocol.TOKEN_ENV} in the environment of the Ray containers: every request must "
                         "carry it as a bearer token", code="no_token")
    replicas = args.get("replicas")
    low, high = args.get("min_replicas"), args.get("max_replicas")
    autoscale = low is not None or high is not None
    most = int(high if autoscale else (replicas or 1))
    options = {name: _typed(name, args[key]) for key, name in _MODEL_ARGS.items() if key in args}
    settings = ServerSettings(
        host=str(args.get("host", "0.0.0.0")), allowed_hosts=("*",) if "host" not in args else (),
        output_root=Path(args.get("output_root", Path.home() / ".cache" / "glimpse3d" / "outputs")),
        max_queue=int(args.get("max_queue", protocol.DEFAULT_MAX_QUEUE)),
        max_body_bytes=int(float(args.get("max_body_mb", protocol.DEFAULT_MAX_BODY_MB)) * protocol.MIB))
    models = model_deployment(serve, ModelSpec(options), replicas=None if autoscale else int(replicas or 1),
                              min_replicas=int(low or 0) if autoscale else None,
                              max_replicas=most if autoscale else None,
                              gpus_per_replica=float(args.get("gpus_per_replica", 1)),
                              cpus_per_replica=float(args.get("cpus_per_replica", 1)))
    return ingress_deployment(serve, token, settings, options, store_workers=most, models=models)


def _typed(name: str, value):
    """Serve passes `key=value` arguments of `serve run` as text."""
    if name == "random_weights":
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    return value
