"""Axon: a Matrix homeserver. This package is the core: container, config, CLI, protocol model."""

__version__ = "0.1.0"
