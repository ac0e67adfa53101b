"""The warehouse's background worker: PDF inspection and the sweepers that keep the pipeline moving."""

from workers.main import build_worker, run

__all__ = ["build_worker", "run"]
