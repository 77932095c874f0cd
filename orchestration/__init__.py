"""Dagster wiring for the next-track platform: assets, checks, jobs, schedules, sensors."""
