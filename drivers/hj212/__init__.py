"""HJ 212-2017 environmental monitoring data transmission (analysers at chemical parks)."""
