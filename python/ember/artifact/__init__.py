"""The artifact: a directory with manifest.json, weights.safetensors and the target's code
(`store`), and the GPU launch plan's format (`launch_plan`). Nothing here imports the compiler,
so the runtime can read artifacts without MLIR."""
