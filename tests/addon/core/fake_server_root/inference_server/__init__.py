"""A stand-in for the real server package, for testing the add-on's child-process handling."""
