import os
import shutil
import tempfile

import pytest

from tests.support.server import serve

# Every answer is logged: tests (and the kernels they start, which inherit
# this environment) write to a log of their own, never the user's, and no
# ambient setting turns logging or replay on or off under them.
os.environ["IPYCHAT_HOME"] = tempfile.mkdtemp(prefix="ipychat-home-")
for _name in ("IPYCHAT_LOG", "IPYCHAT_REPLAY", "JPY_SESSION_NAME"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session", autouse=True)
def _test_log_home():
    home = os.environ["IPYCHAT_HOME"]
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def make_server():
    """``make_server(routes)`` starts a recording server; all are stopped after the test."""
    started = []

    def make(routes):
        server = serve(routes)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """Retry backoff in milliseconds, not seconds: many tests meet a failing
    server on purpose, and each would otherwise wait 1.5 s on its two retries.
    (Server-asked waits are what the servers ask; tests/test_retries.py checks
    the real schedule through ``backoff``.)"""
    from ipychat.providers import retry

    monkeypatch.setattr(retry, "INITIAL_DELAY", 0.005)
