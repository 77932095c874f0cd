"""user-items: a user -> the k items they will want."""
