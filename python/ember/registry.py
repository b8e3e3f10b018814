"""Every ember pass, registered: importing this module imports each package that declares
passes (graph transforms, lowering, the CPU and GPU backends), and each registers its own.

The pass framework (ember.pipeline) sits below the passes and never imports them; the tools and
the compiler, above them, import this module so that a pipeline may name any pass."""
from __future__ import annotations

import ember.backends.cpu  # noqa: F401  (imported for registration)
import ember.backends.gpu  # noqa: F401
import ember.lowering  # noqa: F401
import ember.transforms  # noqa: F401
from ember.pipeline.pass_base import REGISTRY  # noqa: F401
