"""ember's command-line tools and the pieces they share.

`ember_opt` is the mlir-opt-style driver (`ember-opt`) and `cli` the `ember` command on
artifacts. Shared by tools: `source` reads .mlir input (splitting on `// -----`, parsing with
the original file's line numbers); `diagnostics` collects MLIR and ember diagnostics, prints
them like mlir-opt and checks them against `// expected-error` comments. Tools stay thin: the
pipeline parser and runner live in `ember.pipeline.pipeline`, the passes in `ember.pipeline`.
"""
