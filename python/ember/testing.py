"""Test helpers: compile an ember-dialect MLIR function and call it on numpy arrays.

Lowerings are checked numerically without the torch frontend: `compile_mlir(text)` runs the
host target's lowering and codegen on a module whose `@main` takes and returns static-shaped
tensors, and returns a function of numpy arrays. Weights are not supported here (use
`ember.compile` for whole models).
"""
from __future__ import annotations

import ctypes
import os
import tempfile
from typing import Callable, List

import numpy as np

_DTYPES = {"f32": np.float32, "f64": np.float64, "f16": np.float16, "i64": np.int64,
           "i32": np.int32, "i1": np.bool_}


def compile_mlir(text: str, target="host", pipeline_prefix: str = "") -> Callable:
    from mlir import ir

    from ember.dialect import new_context
    from ember.pipeline import PassContext
    from ember.pipeline.pipeline import Pipeline
    from ember.runtime.descriptors import describe, pack
    from ember.backends import get_target
    from ember.backends.base import CompileJob

    context = new_context()
    with context:
        module = ir.Module.parse(text)
        main = next(op for op in module.body.operations
                    if ir.StringAttr(op.attributes["sym_name"]).value == "main")
        fn_type = ir.FunctionType(ir.TypeAttr(main.attributes["function_type"]).value)
        results = [(list(ir.RankedTensorType(t).shape),
                    _DTYPES[str(ir.RankedTensorType(t).element_type)]) for t in fn_type.results]
        num_inputs = len(fn_type.inputs)
    tgt = get_target(target)
    text_pipeline = ",".join(p for p in (pipeline_prefix, tgt.lowering_pipeline()) if p)
    Pipeline.parse(text_pipeline, context).run(module, PassContext())
    workdir = tempfile.mkdtemp(prefix="ember-test-")
    code = tgt.codegen(module, CompileJob(workdir, num_inputs, len(results), 0))
    library = ctypes.CDLL(os.path.join(workdir, "model.so"))

    def call(*arrays) -> List[np.ndarray]:
        arrays = [np.ascontiguousarray(a) for a in arrays]
        outputs = [np.zeros(shape, dtype) for shape, dtype in results]
        descriptors = [describe(a.ctypes.data, a.shape) for a in arrays + outputs]
        if library.ember_entry(pack(descriptors)) != 0:
            raise RuntimeError("ember_entry failed")
        return outputs
    call.code = code
    return call
