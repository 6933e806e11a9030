"""API routers by area (FastAPI's "bigger applications" layout): each module has a module-level ``router``."""
