"""Executing the book: the runner, the warm-up, the command line."""
