"""ember-bind-weights: turns `ember.weight` ops into arguments of the public functions.

The generated code never embeds weight data: each distinct weight name becomes one trailing
argument of its function, tagged `ember.weight = "<name>"`, and the runtime passes the mapped
weights file's buffers at call time. After this pass no ember op is left for the CPU pipeline.
Inputs are marked `bufferization.writable = false` so bufferization never writes into a caller's
tensor or a shared weight.
"""
from __future__ import annotations

from dataclasses import dataclass

from mlir import ir

from ember.dialect.ops import Weight
from ember.kit.ir_queries import walk_ops
from ember.pipeline.pass_base import EmberPass, PassContext, register


def bind_function_weights(fn) -> list:
    """Binds the weights used in `fn`; returns their names in argument order."""
    block = fn.regions[0].blocks[0]
    names, args = [], {}
    for op in walk_ops(fn, [Weight.op_name]):
        name = Weight(op).name
        if name not in args:
            args[name] = block.add_argument(op.results[0].type, op.location)
            names.append(name)
        op.results[0].replace_all_uses_with(args[name])
        op.erase()
    inputs = [a.type for a in block.arguments]
    fn_type = ir.FunctionType(ir.TypeAttr(fn.attributes["function_type"]).value)
    fn.attributes["function_type"] = ir.TypeAttr.get(ir.FunctionType.get(inputs, fn_type.results))
    old_attrs = list(ir.ArrayAttr(fn.attributes["arg_attrs"])) if "arg_attrs" in fn.attributes \
        else []
    old_attrs += [ir.DictAttr.get({})] * (len(inputs) - len(names) - len(old_attrs))
    readonly = ir.BoolAttr.get(False)
    arg_attrs = [_with(a, "bufferization.writable", readonly) for a in old_attrs]
    arg_attrs += [ir.DictAttr.get({"ember.weight": ir.StringAttr.get(n),
                                   "bufferization.writable": readonly}) for n in names]
    fn.attributes["arg_attrs"] = ir.ArrayAttr.get(arg_attrs)
    return names


def _with(attrs, key, value):
    entries = {a.name: a.attr for a in ir.DictAttr(attrs)}
    entries[key] = value
    return ir.DictAttr.get(entries)


@register
@dataclass
class BindWeights(EmberPass):
    """Replaces ember.weight ops with function arguments tagged with the weight's name."""
    name = "ember-bind-weights"

    def run(self, module, ctx: PassContext) -> None:
        # Public functions are the entry points the runtime calls; private ones (kernels) get
        # their operands from callers and keep their own argument attributes.
        for fn in walk_ops(module.operation, ["func.func"]):
            private = "sym_visibility" in fn.attributes and \
                ir.StringAttr(fn.attributes["sym_visibility"]).value == "private"
            if fn.regions[0].blocks and not private:
                name = ir.StringAttr(fn.attributes["sym_name"]).value
                ctx.bound_weights[name] = bind_function_weights(fn)
