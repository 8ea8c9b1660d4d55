from tests.integration.conftest import stack  # noqa: F401  (the shared real-stack fixture)
