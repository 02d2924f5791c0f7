"""repscope.geometry."""
