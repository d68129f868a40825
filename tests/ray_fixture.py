"""One local Ray instance shared by the slow tests (import `ray_session` into a test module)."""

import os

import pytest


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """A local Ray cluster with 4 logical CPUs on a 2-core machine (headroom for trial drivers);
    reused if already running; shut down at the end of the session."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    from tl.sweep.driver import start_ray

    if not ray.is_initialized():
        start_ray(num_cpus=4)
    yield tmp_path_factory.mktemp("ray_session")
    if ray.is_initialized():
        ray.shutdown()
