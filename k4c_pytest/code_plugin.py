"""The code layer's options and fixtures. Being written: no options or fixtures yet."""
