"""How passes are declared and run: the pass base and registry (`pass_base`), the pipeline
parser and runner (`pipeline`), and each target's ordered stage table (`stages`).

This package holds no pass and imports none: passes register themselves here when their
packages are imported (ember.registry imports them all).
"""
from ember.pipeline.pass_base import (REGISTRY, EmberPass, PassContext,  # noqa: F401
                                      PassOptionError, register)
