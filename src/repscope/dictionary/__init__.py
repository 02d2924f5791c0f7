"""repscope.dictionary."""
