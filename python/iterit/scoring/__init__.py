"""Scoring: IFD with a causal LM (batched, cached, distributed)."""
