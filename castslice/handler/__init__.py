"""Transport: the Falcon app, the gunicorn server and TLS. Thin by design."""
