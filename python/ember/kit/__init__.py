"""The lowering kit: IR builders shared by passes and code generators of every backend
(scalar and vector math, structured-op builders, rewrite helpers). It imports no pass and no
backend."""
