"""Downstream tasks: labelled-sequence readers, task heads, the fine-tuning protocol and its k-mer baseline."""
