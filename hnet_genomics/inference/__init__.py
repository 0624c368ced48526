"""Running a trained model over sequence: one windowed engine (``engine``), window planning (``windows``),
readouts (``readouts``) and what is computed on top of them (likelihood, variant scores, embeddings).
Nothing here writes files; ``export`` turns the results into tracks, VCFs and tables."""
