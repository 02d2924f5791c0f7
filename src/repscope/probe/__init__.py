"""repscope.probe."""
