"""scrubbot: removes hidden data from photos and tells parents what it found."""
