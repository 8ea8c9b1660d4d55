from tests.integration.conftest import pipeline, stack  # noqa: F401  (shared real-stack fixtures)
