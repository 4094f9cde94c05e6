"""Scale-out training: the notebook's own DCGAN on several processes, GPUs or machines (DDP).

Tested on CPU processes (gloo); its GPU paths are not yet measured on a GPU (docs/performance.md).
"""
