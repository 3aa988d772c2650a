"""Outputs: each renders Findings and nothing else."""
