import pytest

from tests.support.server import serve


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
