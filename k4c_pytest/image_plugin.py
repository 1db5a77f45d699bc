"""The container layer's image options and the ``image`` fixture. Being written."""
