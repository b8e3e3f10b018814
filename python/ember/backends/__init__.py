"""Code generation backends: what every target shares (base.py: options, facts, the stage
table and its runner; llvm.py; bufferize.py; external_tools.py) and one package per family of
targets (cpu/, gpu/), each holding its passes, its kernel generators and its targets. The
table of all targets is ember.targets."""
