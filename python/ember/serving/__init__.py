"""Serving ember artifacts at scale on Ray Serve (the `ember[serve]` extra): `build_app` makes
the deployment (replicas, threads, dynamic batching), `grpc_handle` is the cheapest way to call
it from Python, `run_server` is `ember serve`. The request checking and batching
(ember.serving.batching) needs no Ray."""
from ember.serving.batching import BatchDim, ModelRunner, RequestTooLarge, batch_dim

__all__ = ["BatchDim", "ModelRunner", "RequestTooLarge", "batch_dim", "build_app", "grpc_handle",
           "run_server"]


def __getattr__(name):
    if name in ("build_app", "grpc_handle", "run_server", "EmberServer"):
        from ember.serving import deployment
        return getattr(deployment, name)
    raise AttributeError(name)
