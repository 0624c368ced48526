"""Downstream tasks: task heads, the fine-tuning protocol, its k-mer baseline and the genome-cut tasks."""
