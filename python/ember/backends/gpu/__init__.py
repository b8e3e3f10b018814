"""GPU backends (cuda through NVVM, rocm through ROCDL): outlining GEMMs, the kernel
generators (SIMT and tensor-core GEMMs, row reductions, elementwise), the launch plan and the
targets' stage tables. Importing the package registers its passes."""
from ember.backends.gpu import (  # noqa: F401  (imported for registration)
    outline_gemms, kernels, expand_floor)
