"""One scrubber per image format; each module's docstring lists what that format can carry."""
