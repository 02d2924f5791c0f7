"""repscope.similarity."""
