"""The recommender library: sources (raw files to the canonical tables), datasets (splits read
from the warehouse), recommenders (one module per family behind one interface), evaluation,
serving (MLflow pyfuncs and batch tables) and the MLflow registry calls.

Plain Python with no Dagster import, so every piece is usable and testable on its own.
"""
