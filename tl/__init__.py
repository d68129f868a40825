"""tl: transfer learning for astronomical transient classification, swept on Ray."""

__version__ = "0.1.0"
