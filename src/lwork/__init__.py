"""lwork: a mobile VoIP backend."""

__version__ = "0.1.0"
