"""next-track: a playlist -> its next track."""
