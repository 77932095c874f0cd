"""Recommender families behind one interface (``ml.recommenders.base.Recommender``).

Each family is one module; ``load_recommender`` reopens any saved one from its folder.
"""
