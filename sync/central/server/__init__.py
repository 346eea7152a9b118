"""The central server as an HTTP service (FastAPI on uvicorn): kiosks' uploads and bundles."""
