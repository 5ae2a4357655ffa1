"""Contract version: bump the major number on any change a model or a stored result must notice."""
CONTRACT_VERSION = "1.0"
