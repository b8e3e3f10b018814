"""How passes are declared and run: the pass base and registry (`pass_base`), the pipeline
parser and runner (`pipeline`), and each target's ordered stage table (`stages`).

This package holds no pass itself; `load_passes()` imports the packages that do (graph
transforms, lowering, the CPU and GPU backends) so that every pass is registered once.
"""
from ember.pipeline.pass_base import (REGISTRY, EmberPass, PassContext,  # noqa: F401
                                      PassOptionError, load_passes, register)
