"""Scale-out and opt-in GPU extras, set apart from the measured default path (``helpers.gpu``).

Each module's GPU path is not yet measured on a GPU (docs/performance.md will hold the numbers
when it is); each is tested on the CPU (gloo processes, dynamo's eager backend, CPU fused Adam).

- ``distributed``: ``python -m helpers distributed``, the notebook's DCGAN on several processes,
  GPUs or machines (DDP); with ``loaders`` (each process's share of the images) and
  ``batchnorm`` (batch norm over all processes, ``--sync-bn``).
- ``compile``: ``torch.compile`` of D's and G's forward (``compile_models``).
- ``fused_adam``: PyTorch's fused Adam kernel for the notebook's optimizers
  (``prepare_optimizers``).
"""

__all__: list[str] = []
