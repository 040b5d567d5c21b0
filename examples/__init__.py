"""Runnable example services: Flask (gunicorn), FastAPI (uvicorn), Django (gunicorn).

Each is used by tests/test_integrations_e2e.py and by docs/integrations.md.
"""
