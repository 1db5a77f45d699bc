"""Read-only views of the targets k4c inspects. A source never decides pass or fail."""
