"""Plumbing for the DCGAN face-generation notebook.

The notebook teaches; this package holds what a learner is not asked to write:
data preparation, plotting, metrics and instructor tooling. Each module names the
notebook step it serves.
"""
