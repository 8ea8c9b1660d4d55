"""Load benchmark of the whole pipeline on the real stack (see bench/README.md).

``tallyroom bench`` calls :func:`run`; ``python -m bench.hotpath`` profiles the
worker's per-event work in-process.
"""

_RUNNER = {"BenchOptions", "parse_rates", "run"}


def __getattr__(name: str):
    # Lazy, so that `python -m bench.probe` (a child of every load) starts light.
    if name in _RUNNER:
        from tallyroom.bench import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
