"""The demo shop (k4c demo): nothing here runs, it is scanned."""
