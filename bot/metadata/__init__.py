"""Readers that turn raw metadata containers (EXIF, XMP, IPTC, ...) into findings."""
