"""Offline evaluation: ranking metrics, candidate selection, and the reports people read."""
