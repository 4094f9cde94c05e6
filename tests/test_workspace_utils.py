"""Specification of workspace_utils: keep-alive requests go only to the configured endpoint,
on schedule, stop promptly, and never disturb the training loop."""

import http.server
import socket
import threading
import time
import warnings

import pytest

import workspace_utils
from workspace_utils import KeepAliveWarning, active_session, keep_awake

FAST = {"delay": 0.05, "interval": 0.05}  # small for testing speed; the defaults are 4 minutes


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class KeepAliveServer:
    """A real HTTP server on 127.0.0.1 that records every request it gets."""

    def __init__(self, status=200):
        self.requests = []
        recorded = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                recorded.append((self.command, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _answer

            def log_message(self, *args):  # keep test output clean
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/keepalive"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def count(self):
        return len(self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition, timeout=3.0):
    """Poll until condition() is true; the test fails on the assert that follows if it is not."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def keepalive_threads():
    return [t for t in threading.enumerate() if t.name == "workspace-keepalive"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in (
        workspace_utils.URL_VARIABLE,
        workspace_utils.METHOD_VARIABLE,
        workspace_utils.TOKEN_VARIABLE,
        workspace_utils.HEADER_VARIABLE,
    ):
        monkeypatch.delenv(name, raising=False)
    # A proxy set on the machine must not intercept requests to the local test server.
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def server():
    srv = KeepAliveServer()
    yield srv
    srv.close()


@pytest.fixture
def configured(server, monkeypatch):
    monkeypatch.setenv(workspace_utils.URL_VARIABLE, server.url)
    return server


def assert_no_more_requests(server):
    """After the session ends the count must stay where it is."""
    settled = server.count
    time.sleep(0.25)  # five intervals: enough for a leftover thread to ping again
    assert server.count == settled, "keep-alive requests continued after the session ended"
    assert keepalive_threads() == []


def closed_port_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now: connections are refused
    return f"http://127.0.0.1:{port}/keepalive"


def test_defaults_are_the_original_four_minutes():
    assert workspace_utils.DELAY == workspace_utils.INTERVAL == 240


def test_active_session_sends_post_requests_on_schedule(configured):
    with active_session(**FAST):
        assert wait_for(lambda: configured.count >= 3)
    method, headers, body = configured.requests[0]
    assert method == "POST"
    assert body == b""
    assert headers["Content-Length"] == "0"  # some servers refuse a POST without one (411)
    assert "Authorization" not in headers


def test_first_request_waits_for_the_delay(configured):
    with active_session(delay=0.3, interval=0.05):
        time.sleep(0.1)
        assert configured.count == 0
        assert wait_for(lambda: configured.count >= 1)


def test_later_requests_follow_the_interval_not_the_delay(configured):
    with active_session(delay=0.05, interval=30):
        assert wait_for(lambda: configured.count >= 1)
        time.sleep(0.3)
        assert configured.count == 1


def test_method_get_is_used_when_configured(configured, monkeypatch):
    monkeypatch.setenv(workspace_utils.METHOD_VARIABLE, "get")
    with active_session(**FAST):
        assert wait_for(lambda: configured.count >= 1)
    assert configured.requests[0][0] == "GET"


def test_token_is_sent_as_bearer_authorization(configured, monkeypatch):
    monkeypatch.setenv(workspace_utils.TOKEN_VARIABLE, "s3cret")
    with active_session(**FAST):
        assert wait_for(lambda: configured.count >= 1)
    assert configured.requests[0][1]["Authorization"] == "Bearer s3cret"


def test_token_goes_in_the_named_header_when_one_is_configured(configured, monkeypatch):
    monkeypatch.setenv(workspace_utils.TOKEN_VARIABLE, "s3cret")
    monkeypatch.setenv(workspace_utils.HEADER_VARIABLE, "X-Api-Key")
    with active_session(**FAST):
        assert wait_for(lambda: configured.count >= 1)
    headers = configured.requests[0][1]
    assert headers["X-Api-Key"] == "s3cret"
    assert "Authorization" not in headers


def test_nothing_is_sent_and_no_thread_started_when_not_configured(server):
    with active_session(**FAST):
        assert keepalive_threads() == []
        time.sleep(0.2)
    assert list(keep_awake(range(3), **FAST)) == [0, 1, 2]
    assert server.count == 0


def test_requests_stop_when_the_session_ends(configured):
    with active_session(**FAST):
        assert wait_for(lambda: configured.count >= 2)
    assert_no_more_requests(configured)


def test_requests_stop_when_the_body_raises(configured):
    with pytest.raises(KeyError), active_session(**FAST):
        assert wait_for(lambda: configured.count >= 1)
        raise KeyError("learner bug")
    assert_no_more_requests(configured)


def test_keep_awake_yields_exactly_the_items_in_order(configured):
    items = ["a", "b", "c", "d"]
    got = []
    for item in keep_awake(iter(items), **FAST):
        got.append(item)
        time.sleep(0.03)
    assert got == items
    assert configured.count >= 1
    assert_no_more_requests(configured)


def test_keep_awake_stops_pinging_when_the_loop_breaks(configured):
    for i in keep_awake(range(1000), **FAST):
        if i == 0:
            assert wait_for(lambda: configured.count >= 1)
        if i == 2:
            break
    assert_no_more_requests(configured)


def test_keep_awake_stops_pinging_when_the_loop_body_raises(configured):
    with pytest.raises(RuntimeError):
        for _ in keep_awake(range(10), **FAST):
            assert wait_for(lambda: configured.count >= 1)
            raise RuntimeError("learner bug")
    assert_no_more_requests(configured)


def test_keep_awake_stops_pinging_when_the_iterable_raises(configured):
    def batches():
        yield 1
        assert wait_for(lambda: configured.count >= 1)
        raise OSError("disk went away")

    with pytest.raises(OSError):
        for _ in keep_awake(batches(), **FAST):
            pass
    assert_no_more_requests(configured)


def test_keep_awake_stops_pinging_when_closed(configured):
    loop = keep_awake(range(10), **FAST)
    next(loop)
    assert wait_for(lambda: configured.count >= 1)
    loop.close()
    assert_no_more_requests(configured)


def test_server_error_does_not_raise_and_warns_once(monkeypatch):
    failing = KeepAliveServer(status=500)
    monkeypatch.setenv(workspace_utils.URL_VARIABLE, failing.url)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with active_session(**FAST):
                assert wait_for(lambda: failing.count >= 3)
                result = sum(range(10))
    finally:
        failing.close()
    assert result == 45
    keepalive = [w for w in caught if issubclass(w.category, KeepAliveWarning)]
    assert len(keepalive) == 1
    assert failing.url in str(keepalive[0].message)
    assert "500" in str(keepalive[0].message)


def test_refused_connection_does_not_raise_and_warns_once(monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv(workspace_utils.URL_VARIABLE, url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = list(keep_awake(range(5), **FAST))
        # Let several failed pings happen inside one session.
        with active_session(**FAST):
            time.sleep(0.3)
    assert got == [0, 1, 2, 3, 4]
    keepalive = [w for w in caught if issubclass(w.category, KeepAliveWarning)]
    assert len(keepalive) == 1
    assert url in str(keepalive[0].message)


def test_url_that_is_not_http_warns_at_once_and_runs_the_body(monkeypatch):
    monkeypatch.setenv(workspace_utils.URL_VARIABLE, "localhost:8000/keepalive")
    with pytest.warns(KeepAliveWarning, match="not an http"), active_session(**FAST):
        assert keepalive_threads() == []
        result = "trained"
    assert result == "trained"


def test_exit_is_prompt_even_in_the_middle_of_a_long_wait(configured):
    with active_session(delay=0.05, interval=30):
        assert wait_for(lambda: configured.count >= 1)
        started = time.monotonic()
    assert time.monotonic() - started < 1.0
    assert keepalive_threads() == []


def test_works_from_a_non_main_thread(configured):
    outcome = {}

    def train():
        try:
            with active_session(**FAST):
                outcome["pinged"] = wait_for(lambda: configured.count >= 2)
            outcome["items"] = list(keep_awake(range(3), **FAST))
        except BaseException as error:  # report to the main thread instead of dying silently
            outcome["error"] = error

    worker = threading.Thread(target=train)
    worker.start()
    worker.join(timeout=5)
    assert "error" not in outcome, outcome.get("error")
    assert outcome == {"pinged": True, "items": [0, 1, 2]}
    assert_no_more_requests(configured)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "240", None, True])
@pytest.mark.parametrize("argument", ["delay", "interval"])
def test_bad_delay_or_interval_is_a_clear_value_error(argument, bad):
    message = f"{argument} must be a positive number of seconds"
    with pytest.raises(ValueError, match=message), active_session(**{argument: bad}):
        pass
    with pytest.raises(ValueError, match=f"{argument} must be a positive number of seconds"):
        keep_awake(range(3), **{argument: bad})  # fails on the call, before iterating


def test_unknown_method_is_a_clear_value_error(configured, monkeypatch):
    monkeypatch.setenv(workspace_utils.METHOD_VARIABLE, "PUT")
    with pytest.raises(ValueError, match="must be POST or GET"), active_session(**FAST):
        pass


class DrippingServer:
    """A loopback server that answers one byte at a time, every `every` seconds (issue 11, case 10).

    Each byte restarts a per-read timeout, so only a total deadline ends such a request. The
    server counts connections, and every connection stops by itself after `lifetime` seconds.
    """

    def __init__(self, every=0.1, lifetime=10.0):
        self.every, self.lifetime = every, lifetime
        self.connections = 0
        self.stopped = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/keepalive"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:  # the 0.05 s accept timeout: look at `stopped` again
                continue
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100000
        end = time.monotonic() + self.lifetime
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(4096)  # the request
                for byte in answer:
                    if self.stopped.wait(self.every) or time.monotonic() > end:
                        return
                    conn.sendall(bytes([byte]))
            except OSError:  # the client hung up: this connection is done
                return

    def close(self):
        self.stopped.set()
        self.thread.join(timeout=2)
        self.listener.close()


def test_a_server_that_drips_its_answer_is_cut_off_by_the_deadline(monkeypatch):
    monkeypatch.setattr(workspace_utils, "REQUEST_TIMEOUT", 0.5)  # > the drip, so it never fires
    monkeypatch.setattr(workspace_utils, "REQUEST_DEADLINE", 0.3, raising=False)
    dripping = DrippingServer(every=0.1)
    monkeypatch.setenv(workspace_utils.URL_VARIABLE, dripping.url)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with active_session(**FAST):
                # Each request lasts about 0.3 s, so 4 pings fit in 2 s; without a deadline the
                # first request never ends and there is only 1.
                assert wait_for(lambda: dripping.connections >= 4, timeout=5)
    finally:
        dripping.close()
    keepalive = [w for w in caught if issubclass(w.category, KeepAliveWarning)]
    assert len(keepalive) == 1
    message = str(keepalive[0].message)
    assert dripping.url in message
    assert "no complete answer within 0.3 s" in message
    assert_no_more_threads()


def assert_no_more_threads():
    assert wait_for(lambda: keepalive_threads() == [], timeout=2)


def test_a_complete_answer_within_the_deadline_is_not_a_warning(configured, monkeypatch):
    monkeypatch.setattr(workspace_utils, "REQUEST_DEADLINE", 2.0, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with active_session(**FAST):
            assert wait_for(lambda: configured.count >= 3)
    assert [w for w in caught if issubclass(w.category, KeepAliveWarning)] == []


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1/keepalive", "http://localhost:80a/"])
def test_a_malformed_url_is_one_warning_and_the_body_runs(monkeypatch, url):
    monkeypatch.setenv(workspace_utils.URL_VARIABLE, url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with active_session(**FAST):
            assert keepalive_threads() == []
            result = "trained"
        assert list(keep_awake(range(2), **FAST)) == [0, 1]
    assert result == "trained"
    keepalive = [w for w in caught if issubclass(w.category, KeepAliveWarning)]
    assert len(keepalive) == 2  # one per session: this one and keep_awake's
    assert all(url in str(w.message) and "not a valid URL" in str(w.message) for w in keepalive)
