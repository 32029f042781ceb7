"""psirel.features: patches around points, their normalisation, and per-point scalar features.

numpy / scipy only (the inference install has no torch).
"""
