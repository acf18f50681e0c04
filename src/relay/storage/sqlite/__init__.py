"""The embedded store: one SQLite file, read on a thread, written by a child process."""
