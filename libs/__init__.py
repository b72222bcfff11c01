"""Runtime shared by every Brandclub service."""
