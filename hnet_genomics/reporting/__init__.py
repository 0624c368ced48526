"""Run reports and same-budget comparisons built from the JSON files the other commands write."""
