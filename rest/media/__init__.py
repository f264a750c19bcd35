"""The media repository's HTTP surface (client and federation endpoints)."""
