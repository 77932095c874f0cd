"""Run config shared by the tests that materialize the graph."""

SMALL_GRID = {  # a grid small enough for a test, still every family and both scorings
    "track_embeddings": {
        "config": {
            "candidates": [
                {
                    "family": "word2vec",
                    "params": {"epochs": 15},
                    "variants": [
                        {"scoring": "in_in", "last_n": 1},
                        {"scoring": "in_out", "last_n": 1},
                    ],
                }
            ]
        }
    },
    "sequential_rules_candidates": {
        "config": {
            "candidates": [
                {
                    "family": "sequential_rules",
                    "params": {"max_distance": 10},
                    "variants": [
                        {"last_n": 2, "recency_decay": 0.5},
                        {"last_n": 5},
                        {"last_n": 1, "skip_unknown": False},  # the baseline's rule
                    ],
                },
                # One successor kept per track: clearly worse, for successive halving to stop.
                {
                    "family": "sequential_rules",
                    "params": {"max_distance": 10, "keep_per_item": 1},
                    "variants": [{"last_n": 1}],
                },
            ],
        }
    },
    "rung_references": {"config": {"min_train_rows": 0}},  # screen at any size
    "neighbourhood_candidates": {
        "config": {
            "candidates": [
                {"family": "item_knn", "variants": [{"last_n": 3, "recency_decay": 0.5}]},
                {"family": "session_knn", "variants": [{"k": 50, "sample_size": 500}]},
            ]
        }
    },
}
