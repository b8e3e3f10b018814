"""Serving ember artifacts at scale on Ray Serve (the `ember[serve]` extra): `build_app` makes
the deployment (replicas, threads, dynamic batching), `run_server` is `ember serve`. The
request checking and batching (ember.serving.batching) needs no Ray."""
from ember.serving.batching import BatchDim, ModelRunner, RequestTooLarge, batch_dim

__all__ = ["BatchDim", "ModelRunner", "RequestTooLarge", "batch_dim", "build_app", "run_server"]


def __getattr__(name):
    if name in ("build_app", "run_server", "EmberServer"):
        from ember.serving import deployment
        return getattr(deployment, name)
    raise AttributeError(name)
