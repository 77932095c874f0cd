"""Next-track recommendation library: sources, embeddings, retrieval, metrics, baselines, model.

Plain Python with no Dagster import, so every piece is usable and testable on its own.
"""
