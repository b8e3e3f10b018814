// The ember dialect, defined once here in IRDL.
//
// This file is the single source of truth for ember's ops: it is loaded into both MLIR builds
// (torch-mlir's, for the frontend, and the compiler's `mlir` 22), `ember-opt --irdl-file` style
// tools can read it, and `python -m ember.dialect.docgen` turns the `///` comments below into
// dialect/README.md. IRDL checks structure (operand counts, attribute kinds); the semantic rules
// (shapes, enum values) live in dialect/verifier.py, which names the rule a bad op breaks.
//
// Ops work on ranked tensors; `?` dims are allowed everywhere unless an op says otherwise.

irdl.dialect @ember {

  /// A model constant, referred to by name. The data lives in the weights table (and in the
  /// artifact's weights.safetensors), never in the IR; the host code receives it as a bound
  /// argument at load time.
  /// attr name: the weights-table key (e.g. "fc1.weight").
  irdl.operation @weight {
    %str = irdl.base "#builtin.string"
    %out = irdl.base "!builtin.tensor"
    irdl.attributes { "name" = %str }
    irdl.results(result: %out)
  }

  /// GEMM with a fused epilogue: `result = residual + act(lhs @ rhs + bias)`.
  /// lhs is [..., M, K]; rhs is [K, N] (shared by every batch) or [..., K, N] with lhs's batch
  /// dims; bias broadcasts along the last dim ([N]); residual has the result's shape.
  /// attr activation: none | relu | gelu | gelu_tanh | silu | sigmoid | tanh.
  /// attr rhs_panel (optional i64 NR, set by ember-pack-weights): rhs is [ceil(N/NR), K, NR],
  /// the [K, N] matrix in NR-column panels (rhs[k, n] at [n / NR, k, n % NR], zero-padded).
  /// attr lhs_patches (optional array<i64: KH, KW, SH, SW, DH, DW>, set by ember-conv-to-gemm):
  /// lhs is a zero-padded NHWC input [N, Hp, Wp, C] standing for its im2col patch matrix
  /// [N, OH, OW, KH*KW*C], element (n, oh, ow, (kh*KW + kw)*C + c) = lhs[n, oh*SH + kh*DH,
  /// ow*SW + kw*DW, c], OH = (Hp - DH*(KH-1) - 1) / SH + 1 (OW alike): a convolution as a GEMM
  /// that never materializes the patches.
  /// IRDL in MLIR 22 has no optional attributes, so dialect/verifier.py checks these.
  irdl.operation @gemm {
    %lhs = irdl.base "!builtin.tensor"
    %rhs = irdl.base "!builtin.tensor"
    %bias = irdl.base "!builtin.tensor"
    %residual = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    irdl.operands(lhs: %lhs, rhs: %rhs, bias: optional %bias, residual: optional %residual)
    irdl.attributes { "activation" = %str }
    irdl.results(result: %out)
  }

  /// Layer normalization over the trailing `normalized_ndim` dims, computed in the input's
  /// precision (f32 stays f32): `(x - mean) / sqrt(var + epsilon) * weight + bias`.
  /// weight and bias, when present, have the normalized dims' shape.
  /// attr epsilon: f32. attr normalized_ndim: i64 >= 1.
  irdl.operation @layer_norm {
    %x = irdl.base "!builtin.tensor"
    %w = irdl.base "!builtin.tensor"
    %b = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %f = irdl.base "#builtin.float"
    %i = irdl.base "#builtin.integer"
    irdl.operands(input: %x, weight: optional %w, bias: optional %b)
    irdl.attributes { "epsilon" = %f, "normalized_ndim" = %i }
    irdl.results(result: %out)
  }

  /// Softmax along one axis, numerically stable (subtracts the running max).
  /// attr axis: i64 in [0, rank).
  irdl.operation @softmax {
    %x = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %i = irdl.base "#builtin.integer"
    irdl.operands(input: %x)
    irdl.attributes { "axis" = %i }
    irdl.results(result: %out)
  }

  /// Elementwise unary function; the result has the input's type.
  /// attr kind: relu | gelu | gelu_tanh | silu | sigmoid | tanh | exp | log | neg | sqrt |
  /// rsqrt | abs | reciprocal.
  irdl.operation @unary {
    %x = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    irdl.operands(input: %x)
    irdl.attributes { "kind" = %str }
    irdl.results(result: %out)
  }

  /// Elementwise binary function with numpy broadcasting (trailing dims aligned; a dim of 1
  /// stretches). The result's shape is the broadcast shape.
  /// attr kind: add | sub | mul | div | max | min | pow.
  irdl.operation @binary {
    %l = irdl.base "!builtin.tensor"
    %r = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %str = irdl.base "#builtin.string"
    irdl.operands(lhs: %l, rhs: %r)
    irdl.attributes { "kind" = %str }
    irdl.results(result: %out)
  }

  /// Permutes dims: result dim i is input dim permutation[i].
  /// attr permutation: array<i64>, a permutation of [0, rank).
  irdl.operation @transpose {
    %x = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %perm = irdl.base "#builtin.dense_array"
    irdl.operands(input: %x)
    irdl.attributes { "permutation" = %perm }
    irdl.results(result: %out)
  }

  /// Reinterprets a tensor's elements (row-major) with the result's static shape; element
  /// counts must match.
  irdl.operation @reshape {
    %x = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    irdl.operands(input: %x)
    irdl.results(result: %out)
  }

  /// 2-D convolution with a fused epilogue: `result = residual + act(conv(input, filter) + bias)`.
  /// layout "nchw": input [N, C, H, W], filter [F, C/groups, KH, KW], result [N, F, OH, OW];
  /// layout "nhwc": input [N, H, W, C], filter [KH, KW, C/groups, F], result [N, OH, OW, F].
  /// Zero padding is symmetric per spatial dim. bias is [F]; residual has the result's shape.
  /// groups is 1 (dense) or C = F (depthwise).
  /// attr strides, padding, dilations: array<i64> of 2. attr groups: i64. attr activation: as
  /// ember.gemm. attr layout: nchw | nhwc.
  irdl.operation @conv2d {
    %x = irdl.base "!builtin.tensor"
    %w = irdl.base "!builtin.tensor"
    %bias = irdl.base "!builtin.tensor"
    %residual = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %strides = irdl.base "#builtin.dense_array"
    %padding = irdl.base "#builtin.dense_array"
    %dilations = irdl.base "#builtin.dense_array"
    %groups = irdl.base "#builtin.integer"
    %activation = irdl.base "#builtin.string"
    %layout = irdl.base "#builtin.string"
    irdl.operands(input: %x, filter: %w, bias: optional %bias, residual: optional %residual)
    irdl.attributes { "strides" = %strides, "padding" = %padding, "dilations" = %dilations,
                      "groups" = %groups, "activation" = %activation, "layout" = %layout }
    irdl.results(result: %out)
  }

  /// 2-D max or average pooling over windows of `kernel` (zero-padded for avg, -inf for max;
  /// an average divides by the full window, padding included, as PyTorch's default).
  /// layout "nchw": input [N, C, H, W]; "nhwc": input [N, H, W, C].
  /// attr kind: max | avg. attr kernel, strides, padding: array<i64> of 2. attr layout.
  irdl.operation @pool2d {
    %x = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %kind = irdl.base "#builtin.string"
    %kernel = irdl.base "#builtin.dense_array"
    %strides = irdl.base "#builtin.dense_array"
    %padding = irdl.base "#builtin.dense_array"
    %layout = irdl.base "#builtin.string"
    irdl.operands(input: %x)
    irdl.attributes { "kind" = %kind, "kernel" = %kernel, "strides" = %strides,
                      "padding" = %padding, "layout" = %layout }
    irdl.results(result: %out)
  }

  /// Scaled dot-product attention: `softmax(q @ k^T * scale + mask) @ v`, with an optional
  /// causal mask (query i attends to keys j <= i + Sk - Sq). A query whose scores are all
  /// -inf (fully masked) gets zeros, as in PyTorch.
  /// q [..., Sq, D], k [..., Sk, D], v [..., Sk, Dv] (equal leading dims), mask (additive,
  /// floating point) broadcastable to [..., Sq, Sk]; result [..., Sq, Dv].
  /// attr scale: f32. attr causal: bool (an i1 integer attribute: true/false).
  irdl.operation @attention {
    %q = irdl.base "!builtin.tensor"
    %k = irdl.base "!builtin.tensor"
    %v = irdl.base "!builtin.tensor"
    %mask = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %scale = irdl.base "#builtin.float"
    %causal = irdl.base "#builtin.integer"
    irdl.operands(query: %q, key: %k, value: %v, mask: optional %mask)
    irdl.attributes { "scale" = %scale, "causal" = %causal }
    irdl.results(result: %out)
  }

  /// RMS normalization over the trailing `normalized_ndim` dims:
  /// `x / sqrt(mean(x^2) + epsilon) * weight`. weight, when present, has the normalized shape.
  /// attr epsilon: f32. attr normalized_ndim: i64 >= 1.
  irdl.operation @rms_norm {
    %x = irdl.base "!builtin.tensor"
    %w = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %eps = irdl.base "#builtin.float"
    %n = irdl.base "#builtin.integer"
    irdl.operands(input: %x, weight: optional %w)
    irdl.attributes { "epsilon" = %eps, "normalized_ndim" = %n }
    irdl.results(result: %out)
  }

  /// Rotary position embedding (RoPE), "rotate half" form: with x's last dim D split into
  /// halves x1, x2: `result = x * cos + concat(-x2, x1) * sin`. cos and sin broadcast to x.
  irdl.operation @rotary_embedding {
    %x = irdl.base "!builtin.tensor"
    %cos = irdl.base "!builtin.tensor"
    %sin = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    irdl.operands(input: %x, cos: %cos, sin: %sin)
    irdl.results(result: %out)
  }

  /// A contiguous slice along one axis: `result = input[..., start:start+size, ...]` (every
  /// other dim whole). How merged GEMMs hand each consumer its part of the result.
  /// attr axis, start, size: i64.
  irdl.operation @slice {
    %x = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %axis = irdl.base "#builtin.integer"
    %start = irdl.base "#builtin.integer"
    %size = irdl.base "#builtin.integer"
    irdl.operands(input: %x)
    irdl.attributes { "axis" = %axis, "start" = %start, "size" = %size }
    irdl.results(result: %out)
  }

  /// Reduction over `axes` (sorted, distinct). With keepdim the reduced dims stay as size 1.
  /// attr kind: sum | mean | max | min. attr axes: array<i64>. attr keepdim: bool (i1).
  irdl.operation @reduce {
    %x = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %kind = irdl.base "#builtin.string"
    %axes = irdl.base "#builtin.dense_array"
    %keepdim = irdl.base "#builtin.integer"
    irdl.operands(input: %x)
    irdl.attributes { "kind" = %kind, "axes" = %axes, "keepdim" = %keepdim }
    irdl.results(result: %out)
  }

  /// Concatenation of two tensors along `axis`; every other dim equal. (Two operands, not a
  /// variadic list: an IRDL variadic operand binds one type for all its values, and the
  /// inputs' sizes along `axis` differ. Wider concatenations stay with the fallback.)
  /// attr axis: i64.
  irdl.operation @concat {
    %lhs = irdl.base "!builtin.tensor"
    %rhs = irdl.base "!builtin.tensor"
    %out = irdl.base "!builtin.tensor"
    %axis = irdl.base "#builtin.integer"
    irdl.operands(lhs: %lhs, rhs: %rhs)
    irdl.attributes { "axis" = %axis }
    irdl.results(result: %out)
  }
}
