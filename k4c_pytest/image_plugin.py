"""The image source options and the ``image`` fixture. Being written: no options or fixtures yet."""
