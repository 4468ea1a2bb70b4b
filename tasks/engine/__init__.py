"""Framework-free dissection engine (PyTorch only; never imports Django or Celery).

Import the submodules directly (``from tasks.engine.datasets import open_dataset``); this
package file stays empty so that importing it is cheap.
"""
