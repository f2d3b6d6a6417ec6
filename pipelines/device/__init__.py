"""The device side: where models live and work runs (torch, diffusers), loaded only where it runs.

The runners (`local`: one accelerator thread in this process; `cluster` and `worker`: Ray Serve model
workers), the model manager and its downloads, CUDA speed-ups (`acceleration`), the per-run pipeline
changes (`changes`), sampling helpers shared by the tasks' work (`sampling`, `previews`, `weighting`), and
ZeroGPU's accelerator lease (`zerogpu`).
"""
