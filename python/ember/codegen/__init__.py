"""Code-generation helpers shared by ember's target passes (not passes themselves).

`cpu_gemm` holds the CPU GEMM machinery (packed-weight layout, kernel descriptors, schedules and
the vector-dialect micro-kernel); `vector_math` expands transcendental math ops into polynomials
that vectorize. Passes in `ember.passes` call into these modules; nothing here registers a pass.
"""
