"""Status API and dashboard (Flask under gunicorn)."""
