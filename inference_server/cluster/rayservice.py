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
clients use in the URL; default: any) and the other fields of server/settings.py's
ServerSettings; checkpoint, config, random_weights, device, precision. `RayServiceArgs` checks
them, so a wrong or unknown one stops the deployment with a message that names it.
docs/scaling.md shows a RayService manifest.
"""
from __future__ import annotations

import os

from pydantic import Field

from .. import protocol
from ..errors import SetupError
from ..server.settings import ServerSettings, settings_from
from .models import ModelSpec
from .serve_app import ingress_deployment, model_deployment

_MODEL_ARGS = {"checkpoint": "checkpoint_path", "config": "config_path", "random_weights": "random_weights",
               "device": "device", "precision": "precision"}


class RayServiceArgs(ServerSettings):
    """The builder's `args`: the server settings (as `serve` has them, GLIMPSE_* in the containers'
    environment for those not given) plus the replicas and the model. Serve passes the `key=value`
    arguments of `serve run` as text; pydantic converts them."""

    host: str = "0.0.0.0"  # the name clients use in the URL; not given: any
    replicas: int | None = Field(None, ge=1)
    min_replicas: int | None = Field(None, ge=0)
    max_replicas: int | None = Field(None, ge=1)
    gpus_per_replica: float = Field(1.0, ge=0)
    cpus_per_replica: float = Field(1.0, gt=0)
    checkpoint: str | None = None
    config: str | None = None
    random_weights: bool = False
    device: str | None = None
    precision: str | None = None

    def server_settings(self) -> ServerSettings:
        values = self.model_dump(include=set(ServerSettings.model_fields))
        if "host" not in self.model_fields_set:
            values["allowed_hosts"] = ("*",)
        return ServerSettings(**values)

    def model_options(self) -> dict:
        """SyncDreamerService's keyword arguments that were given."""
        return {name: getattr(self, key) for key, name in _MODEL_ARGS.items() if key in self.model_fields_set}


def build(args: dict):
    """The Serve application (an ingress bound to the model deployment) for `args`."""
    from ray import serve  # Ray: only where Serve calls the builder

    config = settings_from(RayServiceArgs, dict(args))
    token = os.environ.get(protocol.TOKEN_ENV, "").strip()
    if not token:
        raise SetupError(f"set {protocol.TOKEN_ENV} in the environment of the Ray containers: every request must "
                         "carry it as a bearer token", code="no_token")
    autoscale = config.min_replicas is not None or config.max_replicas is not None
    most = config.max_replicas if config.max_replicas is not None else (config.replicas or 1)
    options = config.model_options()
    models = model_deployment(serve, ModelSpec(options), replicas=None if autoscale else (config.replicas or 1),
                              min_replicas=(config.min_replicas or 0) if autoscale else None,
                              max_replicas=most if autoscale else None,
                              gpus_per_replica=config.gpus_per_replica, cpus_per_replica=config.cpus_per_replica)
    return ingress_deployment(serve, token, config.server_settings(), options, store_workers=most, models=models)
