"""psirel.infer: torch-free prediction with a model directory's ONNX graphs.

* :mod:`~psirel.infer.pipeline` — :func:`~psirel.infer.pipeline.predict`, the two-stage,
  chunked, resumable run behind ``psirel predict``: stage 1 embeds every point once (PW encoder
  on patches, embeddings memory-mapped on disk), stage 2 runs the GNN over spatially compact
  node blocks with their full L-hop neighbourhoods.
* :mod:`~psirel.infer.naive` — the reference it is measured against: the whole network on each
  target batch's neighbourhood, recomputing shared nodes.
* :mod:`~psirel.infer.backends` — ONNX Runtime (default) or PyTorch (``train`` extra) behind
  ``embed`` / ``reliability``.
* :mod:`~psirel.infer.prepared` — reading and checking the inputs; :mod:`~psirel.infer.workdir` —
  the work folder's manifest and memory maps that make a killed run resume.

Nothing here imports torch (the inference install has none); only ``TorchBackend`` does, lazily.
"""
