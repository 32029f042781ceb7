"""psirel: reliability of Persistent Scatterer Interferometry points.

A ConvNeXt pointwise encoder over DEM / land-cover / amplitude patches, a graph encoder over the
points' spatial neighbours, and a torch-free ONNX Runtime inference path. See shared/DESIGN.md.
"""

__version__ = "0.1.0"
