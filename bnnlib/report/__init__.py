"""What a page shows: the chapter's frame, figures, the run registry."""
