from tests.dissection.conftest import tiny_mixture_dir  # noqa: F401  (shared session fixture)
