"""ember's CPU benchmarks: ember against PyTorch eager, torch.compile, ONNX Runtime and IREE.

`python benchmarks/run_all.py` (or `make bench`) is the entry point. The pieces:

    models.py    the workloads as torch modules with deterministic weights and inputs
    backends.py  one small adapter per backend: prepare(model, inputs, threads) -> step()
    worker.py    one measurement in a fresh process (what run_all.py spawns)
    report.py    machine info, ratios and the printed tables
    run_all.py   the driver: spawns workers, collects their JSON, prints, writes results/
"""
