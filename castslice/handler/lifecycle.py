"""Readiness of one worker process: ready once built, draining once shutdown begins."""


class Lifecycle:
    """Read by /readyz; written by the app factory and the worker's SIGTERM handler."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False

    def serving(self) -> bool:
        return self.ready and not self.draining
