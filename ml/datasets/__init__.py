"""Warehouse tables turned into what the recommender families read: a catalogue and
integer-encoded sequences, saved once per run and memory-mapped by every candidate."""
