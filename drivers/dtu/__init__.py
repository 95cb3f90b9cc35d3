"""4G DTUs in transparent mode: registration, heartbeats, and the instrument behind."""
