"""Plumbing for the DCGAN face-generation notebook.

The notebook teaches; this package holds what a learner is not asked to write:
data preparation, plotting, metrics and instructor tooling. Each module names the
notebook step it serves.
"""

from pathlib import Path

# The kit's folder (the one holding helpers/ and README.md): the notebooks work from here, so
# data/, processed_celeba_small/ and outputs/ are the same folders wherever a notebook is opened.
KIT_DIR = Path(__file__).resolve().parent.parent
