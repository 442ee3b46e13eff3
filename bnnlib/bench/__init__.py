"""`bnnlib bench`: how fast the engine runs, and what a book costs at scale."""
