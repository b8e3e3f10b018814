"""Target-independent lowering from ember ops to linalg/tensor/arith (GEMMs become kernel
calls), convolutions as implicit GEMMs, weights bound as arguments. Importing the package
registers its passes."""
from ember.lowering import (  # noqa: F401  (imported for registration)
    conv_to_gemm, lower_to_linalg, bind_weights, legalize_reshapes, copy_repeated_results)
