"""Keep a hosted workspace awake while a long training run is going.

Hosted notebooks (course workspaces, cloud notebook servers) often shut down a session that
has been "idle" for a while, even when a cell is busy training. The two tools here send a small
keep-alive HTTP request every few minutes while your code runs:

    from workspace_utils import active_session, keep_awake

    with active_session():
        train(...)                       # anything that takes long

    for epoch in keep_awake(range(n_epochs)):
        train_one_epoch(...)             # keep_awake yields the items of the iterable

Same API as the original course's ``workspace_utils``, with three differences by design:

* Requests go only to an endpoint *you* configure; with nothing configured both tools just run
  your code (the only cost is reading one environment variable). Configure with:

  ``WORKSPACE_KEEPALIVE_URL``     the http(s) URL to call, e.g. your platform's keep-alive API.
  ``WORKSPACE_KEEPALIVE_METHOD``  ``POST`` (default, with an empty body) or ``GET``.
  ``WORKSPACE_KEEPALIVE_TOKEN``   optional secret, sent as ``Authorization: Bearer <token>``...
  ``WORKSPACE_KEEPALIVE_HEADER``  ...or, if this names a header (e.g. ``X-Api-Key``), sent
                                  as that header's value instead.

* A daemon background thread does the waiting and the requests (the original used
  ``signal.alarm``, which does not exist on Windows and fails outside the main thread). It works
  from any thread, never slows your loop, and stops within a fraction of a second when the
  ``with`` block or the loop ends, breaks or raises.

* A keep-alive that fails (no network, a malformed URL, an error status, a timeout, a server
  that answers too slowly) never stops or slows training: the error is reported once per
  session as a ``KeepAliveWarning`` naming the URL, so you know the workspace may still go idle.
  Each request has a total deadline (``REQUEST_DEADLINE``), so a server that trickles its answer
  cannot hold the keep-alive on one request forever.

Note for ``keep_awake``: the pings stop when the loop finishes, breaks or raises. If you keep a
reference to the generator and stop iterating early, call its ``.close()`` (or use
``active_session``) so the pings stop at once rather than when the generator is collected.
"""

import contextlib
import http.client
import math
import numbers
import os
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
import warnings

# The original course's values: first ping after 4 minutes, then every 4 minutes.
DELAY = INTERVAL = 4 * 60  # seconds

URL_VARIABLE = "WORKSPACE_KEEPALIVE_URL"
METHOD_VARIABLE = "WORKSPACE_KEEPALIVE_METHOD"
TOKEN_VARIABLE = "WORKSPACE_KEEPALIVE_TOKEN"
HEADER_VARIABLE = "WORKSPACE_KEEPALIVE_HEADER"

# A keep-alive whose server stays silent this long is abandoned; the next one is tried on schedule.
REQUEST_TIMEOUT = 5  # seconds, for each connect or read
# REQUEST_TIMEOUT restarts with every byte received, so a server that sends one byte every few
# seconds would hold a request forever: this bounds the whole request.
REQUEST_DEADLINE = 15  # seconds
# Leaving the `with` block waits at most this long for the thread; it only matters when a
# request is hanging, and the daemon thread exits by itself once that request gives up.
STOP_WAIT = 0.5  # seconds


class KeepAliveWarning(UserWarning):
    """The keep-alive endpoint could not be reached; training goes on regardless."""


def _check_seconds(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"{name} must be a positive number of seconds, got {value!r}. "
            f"The defaults are {name}={DELAY} (4 minutes)."
        )


def _warn(url, problem):
    warnings.warn(
        f"workspace keep-alive is not working: {url} -> {problem}. Training continues, but "
        f"the workspace may go idle; check {URL_VARIABLE} and the related settings.",
        KeepAliveWarning,
        stacklevel=3,
    )


def _request_from_environment():
    """Build the keep-alive request from the environment; None when not configured or unusable."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        return None
    method = os.environ.get(METHOD_VARIABLE, "POST").strip().upper() or "POST"
    if method not in ("POST", "GET"):
        raise ValueError(
            f"{METHOD_VARIABLE} must be POST or GET, got {method!r}. "
            "Unset it to use POST, the default."
        )
    # Found before training starts, so say it now rather than after the first delay.
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError as error:  # e.g. "http://[::1": an unclosed IPv6 bracket
        _warn(url, f"not a valid URL ({error})")
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        _warn(url, "not an http:// or https:// URL")
        return None
    headers = {"User-Agent": "workspace_utils keep-alive"}
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if token:
        header = os.environ.get(HEADER_VARIABLE, "").strip()
        if header:
            headers[header] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
    data = b"" if method == "POST" else None
    try:
        return urllib.request.Request(url, data=data, headers=headers, method=method)
    except ValueError as error:
        _warn(url, f"not a valid URL ({error})")
        return None


def _urlopen_with_deadline(request, deadline):
    """``urllib.request.urlopen(request)`` that gives up after ``deadline`` seconds in all.

    Returns the first bytes of the answer (up to 1 KiB). A timer shuts the request's sockets
    down when the deadline passes, which wakes a read blocked on a slow server; the request
    then fails with TimeoutError. Proxies, https and redirects work as with ``urlopen``.
    """
    sockets, lock, expired = [], threading.Lock(), threading.Event()

    def create_connection(*args, **kwargs):
        sock = socket.create_connection(*args, **kwargs)
        with lock:
            if expired.is_set():
                sock.close()
                raise TimeoutError(f"no answer within {deadline:g} s")
            sockets.append(sock)
        return sock

    def expire():
        with lock:
            expired.set()
            for sock in sockets:
                with contextlib.suppress(OSError):  # already closed: nothing to wake
                    sock.shutdown(socket.SHUT_RDWR)

    def watched(connection_class):
        def connect(host, **kwargs):
            connection = connection_class(host, **kwargs)
            connection._create_connection = create_connection  # how http.client opens sockets
            return connection

        return connect

    class HTTPHandler(urllib.request.HTTPHandler):
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(watched(http_class), req, **kwargs)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def do_open(self, http_class, req, **kwargs):
            return super().do_open(watched(http_class), req, **kwargs)

    opener = urllib.request.build_opener(HTTPHandler, HTTPSHandler)
    timer = threading.Timer(deadline, expire)
    timer.name, timer.daemon = "workspace-keepalive-deadline", True
    timer.start()
    try:
        with opener.open(request, timeout=REQUEST_TIMEOUT) as response:
            body = response.read(1024)  # let the server finish its reply before we hang up
    except (OSError, http.client.HTTPException) as error:
        if expired.is_set():
            raise TimeoutError(f"no complete answer within {deadline:g} s") from error
        raise
    finally:
        timer.cancel()
    if expired.is_set():  # a shut-down socket reads as a short, complete-looking answer
        raise TimeoutError(f"no complete answer within {deadline:g} s")
    return body


class _Pinger:
    """Background thread that sends `request` after `delay`, then every `interval` seconds."""

    def __init__(self, request, delay, interval):
        self.request = request
        self.delay = delay
        self.interval = interval
        self.stopped = threading.Event()
        self.warned = False
        self.thread = threading.Thread(target=self._run, name="workspace-keepalive", daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.stopped.set()  # wakes the thread at once, even in the middle of a wait
        self.thread.join(timeout=STOP_WAIT)

    def _run(self):
        wait = self.delay
        while not self.stopped.wait(wait):
            self._ping()
            wait = self.interval

    def _ping(self):
        try:
            _urlopen_with_deadline(self.request, REQUEST_DEADLINE)
        except Exception as error:  # any failure here must not reach the training loop
            if not self.warned:
                self.warned = True
                _warn(self.request.full_url, error)


@contextlib.contextmanager
def active_session(delay=DELAY, interval=INTERVAL):
    """Keep the workspace awake while the ``with`` block runs.

    Serves the notebook's training step: ``with active_session(): losses = train(...)``.
    delay: seconds before the first keep-alive request (> 0, default 240).
    interval: seconds between later requests (> 0, default 240).
    Does nothing extra unless ``WORKSPACE_KEEPALIVE_URL`` is set (see the module docstring).
    """
    _check_seconds("delay", delay)
    _check_seconds("interval", interval)
    request = _request_from_environment()
    if request is None:
        yield
        return
    pinger = _Pinger(request, delay, interval)
    pinger.start()
    try:
        yield
    finally:
        pinger.stop()


def keep_awake(iterable, delay=DELAY, interval=INTERVAL):
    """Yield the items of ``iterable`` in order, keeping the workspace awake meanwhile.

    Serves the notebook's training step: ``for epoch in keep_awake(range(n_epochs)): ...``.
    delay, interval: as for ``active_session`` (seconds, > 0, default 240 each).
    The keep-alive stops when the loop ends, breaks or raises.
    """
    # Checked here, not inside the generator, so a bad value fails on this line at once.
    _check_seconds("delay", delay)
    _check_seconds("interval", interval)
    return _keep_awake(iterable, delay, interval)


def _keep_awake(iterable, delay, interval):
    with active_session(delay, interval):
        yield from iterable
