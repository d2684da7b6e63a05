"""hyperzoo: hypernetworks and parameter prediction."""

__version__ = "0.1.0"
