"""NNI's web UI in headless Chromium (Debian's ``chromium``), for the end-to-end tests.

A plain helper module, not a test file. Three levels:

* :func:`render_dom` / :func:`screenshot`: one ``chromium --headless=new`` run each (``--dump-dom``
  / ``--screenshot``, with ``--virtual-time-budget`` so NNI's React app has fetched and rendered).
* :class:`Page`: a page driven over the DevTools protocol (``--remote-debugging-port``, via the
  ``websockets`` package that NNI itself depends on), to run JavaScript in it: set the table's
  columns, read the rendered table, take a screenshot.
* :func:`read_trials_table` / :func:`check_trials_table`: NNI 3.0's "Trials detail" page
  (``/detail``), its "Trial jobs" table showing every key of the final metric dicts as columns.

NNI 3.0's table shows only ``Trial No. / ID / Duration / Status / Default metric`` until a user
picks more columns with "Add/Remove columns"; that choice lives in the browser's localStorage
under ``<experiment id>_columns`` (``{"value": "<JSON list of column keys>", "time", "expire",
"isSelectall"}``, see ``static/model/localStorage.ts`` in NNI's web UI), and metric ``k`` is
column key ``metric/k`` titled ``"k (metric)"`` (``metric/default`` is the "Default metric"
column, key ``latestAccuracy``). We store that choice and reload the page, as the dialog does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# --no-sandbox: the tests may run as root (CI containers), where Chromium's sandbox refuses to start.
BASE_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--no-default-browser-check", "--disable-extensions",
              "--hide-scrollbars", "--mute-audio", "--disable-background-networking")
DEFAULT_COLUMNS = ["sequenceId", "id", "duration", "status", "latestAccuracy"]   # NNI 3.0's defaults
ROWS_PER_PAGE = 20   # NNI 3.0's "Trial jobs" table: 20 items per page until a user picks more


class ChromiumError(RuntimeError):
    """Chromium did not start, timed out, or the page did not reach the expected state."""


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM`` if set, else the first of CHROMIUM_NAMES on PATH."""
    env = os.environ.get("CHROMIUM")
    if env:
        return shutil.which(env) or (env if os.access(env, os.X_OK) else None)
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _chromium() -> str:
    path = find_chromium()
    if path is None:
        raise ChromiumError("chromium not found (Debian: apt-get install chromium; or set $CHROMIUM)")
    return path


def _run_once(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """One headless Chromium run with a throw-away profile."""
    with tempfile.TemporaryDirectory(prefix="nni-eas-chromium-") as profile:
        cmd = [_chromium(), *BASE_FLAGS, f"--user-data-dir={profile}", *args]
        try:
            out = subprocess.run(cmd, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise ChromiumError(f"chromium did not finish within {timeout:.0f} s: {' '.join(cmd)}") from e
    if out.returncode != 0:
        tail = out.stderr.decode(errors="replace")[-2000:]
        raise ChromiumError(f"chromium exited with {out.returncode}: {' '.join(cmd)}\n{tail}")
    return out


def render_dom(url: str, wait_ms: int = 10_000, size: tuple[int, int] = (1600, 1000), timeout: float = 120) -> str:
    """The DOM of ``url`` after ``wait_ms`` of virtual time (scripts run, fetches answered), as HTML."""
    out = _run_once([f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={wait_ms}",
                     "--dump-dom", url], timeout)
    html = out.stdout.decode(errors="replace")
    if "<body" not in html:
        raise ChromiumError(f"chromium printed no DOM for {url}: {out.stderr.decode(errors='replace')[-2000:]}")
    return html


def screenshot(url: str, path: str | os.PathLike, size: tuple[int, int] = (1600, 1000), wait_ms: int = 10_000,
               timeout: float = 120) -> Path:
    """A PNG of ``url`` (viewport ``size``) after ``wait_ms`` of virtual time."""
    path = Path(path).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    _run_once([f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={wait_ms}",
               f"--screenshot={path}", url], timeout)
    if not path.is_file() or path.stat().st_size == 0:
        raise ChromiumError(f"chromium wrote no screenshot of {url} to {path}")
    return path


class Page:
    """One headless Chromium tab driven over the DevTools protocol. Use as a context manager::

        with Page(size=(1600, 1000)) as page:
            page.goto(url)
            page.wait_for("document.querySelector('#tableList') !== null")
            page.screenshot(tmp_path / "page.png")
    """

    def __init__(self, size: tuple[int, int] = (1600, 1000), start_timeout: float = 60):
        self.size = size
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self._profile: tempfile.TemporaryDirectory | None = None
        self._ws = None
        self._next_id = 0

    # -- life cycle -------------------------------------------------------------------------
    def __enter__(self) -> Page:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        from websockets.sync.client import connect   # NNI depends on websockets

        self._profile = tempfile.TemporaryDirectory(prefix="nni-eas-chromium-")
        profile = Path(self._profile.name)
        cmd = [_chromium(), *BASE_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
               "--remote-debugging-address=127.0.0.1", f"--window-size={self.size[0]},{self.size[1]}",
               "about:blank"]
        self._stderr = open(profile.parent / f"{profile.name}.stderr", "w+b")   # noqa: SIM115
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._stderr)
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + self.start_timeout
        while not (port_file.is_file() and port_file.read_text().count("\n") >= 1):
            if self._proc.poll() is not None:
                raise ChromiumError(f"chromium exited with {self._proc.returncode} on start: {self._stderr_tail()}")
            if time.time() > deadline:
                raise ChromiumError(f"chromium opened no DevTools port within {self.start_timeout:.0f} s: "
                                    f"{self._stderr_tail()}")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.loads(r.read())
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise ChromiumError(f"chromium has no page target: {targets}")
        self._ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=30,
                           ping_interval=None, proxy=None)
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  width=self.size[0], height=self.size[1], deviceScaleFactor=1, mobile=False)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        if self._ws is not None:
            try:
                self.send("Browser.close", timeout=5)
            except Exception:   # noqa: BLE001 - closing anyway
                pass
            self._ws.close()
            self._ws = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if getattr(self, "_stderr", None) is not None:
            self._stderr.close()
            Path(self._stderr.name).unlink(missing_ok=True)
            self._stderr = None
        if self._profile is not None:
            self._profile.cleanup()
            self._profile = None

    # -- protocol ---------------------------------------------------------------------------
    def send(self, method: str, timeout: float = 60, **params):
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        if self._ws is None:
            raise ChromiumError("the page is closed")
        self._next_id += 1
        mid = self._next_id
        self._ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise ChromiumError(f"no answer to {method} within {timeout:.0f} s")
            try:
                msg = json.loads(self._ws.recv(timeout=left))
            except TimeoutError as e:
                raise ChromiumError(f"no answer to {method} within {timeout:.0f} s") from e
            if msg.get("id") == mid:
                if "error" in msg:
                    raise ChromiumError(f"{method} failed: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str, timeout: float = 60):
        """The value of a JavaScript expression in the page (promises awaited, JSON-able values)."""
        res = self.send("Runtime.evaluate", timeout=timeout, expression=expression,
                        returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            details = res["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"JavaScript error: {text}\nin: {expression[:500]}")
        return res.get("result", {}).get("value")

    def goto(self, url: str, timeout: float = 60) -> None:
        """Navigates and waits for the document to load (not for the app's data)."""
        res = self.send("Page.navigate", url=url, timeout=timeout)
        if res.get("errorText"):
            raise ChromiumError(f"could not open {url}: {res['errorText']}")
        self.wait_for("document.readyState === 'complete'", timeout=timeout, what=f"{url} to load")

    def reload(self, timeout: float = 60) -> None:
        self.send("Page.reload", ignoreCache=True)
        time.sleep(0.2)   # let the old document go before polling readyState
        self.wait_for("document.readyState === 'complete'", timeout=timeout, what="the page to reload")

    def wait_for(self, condition: str, timeout: float = 60, poll: float = 0.25, what: str | None = None):
        """Polls a JavaScript expression until it is truthy; its value."""
        deadline = time.time() + timeout
        while True:
            value = self.eval(f"(() => {{ try {{ return ({condition}); }} catch (e) {{ return null; }} }})()")
            if value:
                return value
            if time.time() > deadline:
                raise ChromiumError(f"timed out after {timeout:.0f} s waiting for {what or condition}; page text:\n"
                                    f"{self.text()[:3000]}")
            time.sleep(poll)

    def text(self) -> str:
        return self.eval("document.body ? document.body.innerText : ''") or ""

    def html(self) -> str:
        return self.eval("document.documentElement.outerHTML") or ""

    def screenshot(self, path: str | os.PathLike, full_page: bool = True) -> Path:
        """A PNG of the page; ``full_page`` grows the capture to the document's height."""
        params: dict = {"format": "png"}
        if full_page:
            height = self.eval("Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": self.size[0],
                                "height": max(self.size[1], int(height or 0)), "scale": 1})
        data = self.send("Page.captureScreenshot", **params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


# -- NNI 3.0's "Trials detail" page -----------------------------------------------------------

_READ_TABLE_JS = """(() => {
  const table = document.querySelector('#tableList');
  if (!table) return null;
  const headers = {};
  for (const h of table.querySelectorAll('[data-automationid="ColumnsHeaderColumn"][data-item-key]'))
    headers[h.getAttribute('data-item-key')] = h.innerText.trim();
  const rows = [];
  for (const r of table.querySelectorAll('[data-automationid="DetailsRow"]')) {
    const row = {};
    for (const c of r.querySelectorAll('[data-automationid="DetailsRowCell"][data-automation-key]'))
      row[c.getAttribute('data-automation-key')] = c.innerText.trim();
    rows.push(row);
  }
  return {headers, rows};
})()"""


def metric_column(key: str) -> str:
    """The "Trial jobs" table's column key for a final-metric key."""
    return "latestAccuracy" if key == "default" else f"metric/{key}"


def show_columns_js(experiment_id: str, columns: Sequence[str]) -> str:
    """JavaScript storing a "Trial jobs" column choice as NNI's "Add/Remove columns" dialog does."""
    record = {"value": json.dumps(list(columns)), "time": "__NOW__", "expire": 10 * 365 * 86400 * 1000,
              "isSelectall": False}
    js_record = json.dumps(record).replace('"__NOW__"', "Date.now()")
    return f"localStorage.setItem({json.dumps(experiment_id + '_columns')}, JSON.stringify({js_record}))"


def read_trials_table(page: Page, base_url: str, experiment_id: str, metric_keys: Iterable[str],
                      expected: Mapping[str, Iterable[str]], timeout: float = 90) -> dict:
    """Opens ``/detail`` with the default columns plus ``metric_keys``, waits until its "Trial jobs"
    table has a row for each trial id in ``expected`` showing a value for each of that trial's
    metric keys (``expected[id]``), and returns what is rendered:
    ``{"headers": {column key: title}, "rows": [{column key: cell text}], "text": page text}``."""
    base_url = base_url.rstrip("/")
    columns = DEFAULT_COLUMNS + [metric_column(k) for k in metric_keys if metric_column(k) not in DEFAULT_COLUMNS]
    cells = {tid: [metric_column(k) for k in keys] for tid, keys in expected.items()}
    page.goto(f"{base_url}/detail", timeout=timeout)
    page.eval(show_columns_js(experiment_id, columns))
    page.reload(timeout=timeout)
    ready = f"""(() => {{
      const t = {_READ_TABLE_JS};
      const cols = {json.dumps(columns)}, cells = {json.dumps(cells)};
      if (t === null || !cols.every(c => c in t.headers)) return false;
      const byId = Object.fromEntries(t.rows.map(r => [(r.id || '').split(/\s/)[0], r]));
      return Object.entries(cells).every(([id, cs]) =>
        id in byId && cs.every(c => (byId[id][c] || '') !== '' && byId[id][c] !== '--'));
    }})()"""
    page.wait_for(ready, timeout=timeout, what=f"rows for trials {sorted(cells)} with columns {columns} on /detail")
    table = page.eval(_READ_TABLE_JS)
    table["text"] = page.text()
    return table


def _number(text: str) -> float:
    """A metric cell's number: ``"0.125"``, ``"1945824"``, ``"0.125 (FINAL)"`` (Default metric)."""
    try:
        return float(text.split(" (")[0].replace(",", ""))
    except ValueError:
        raise AssertionError(f"metric cell {text!r} is not a number") from None


def check_trials_table(table: dict, trials: list[dict], metrics: list[dict | None], metric_keys: Iterable[str],
                       rel_tol: float = 1e-6) -> None:
    """Asserts the rendered table shows every trial (ID and Trial No.) and, for each metric key,
    a titled column whose cell in each row of a trial that reported the key is the trial's final
    value (from the REST API); every key must be reported by some trial."""
    headers, rows = table["headers"], table["rows"]
    unreported = [k for k in metric_keys if not any(m is not None and k in m for m in metrics)]
    assert not unreported, f"no trial reported {unreported}"
    by_id = {r.get("id", "").split()[0] if r.get("id") else "": r for r in rows}
    for key in metric_keys:
        col = metric_column(key)
        title = "Default metric" if key == "default" else f"{key} (metric)"
        assert headers.get(col) == title, f"column {col!r} titled {headers.get(col)!r}, not {title!r}: {headers}"
        assert key in table["text"], f"metric key {key!r} not in the rendered page"
    for trial, metric in zip(trials, metrics):
        tid = trial["trialJobId"]
        assert tid in table["text"], f"trial {tid} not on the page"
        row = by_id.get(tid)
        assert row is not None, f"no table row for trial {tid}: {rows}"
        assert row.get("sequenceId") == str(trial["sequenceId"]), (row, trial["sequenceId"])
        for key in metric_keys:
            if metric is None or key not in metric:
                continue                                # e.g. EAS's training trials: no 'macs'
            shown = row[metric_column(key)]
            assert shown not in ("", "--"), f"trial {tid}: no value shown for {key}"
            if isinstance(metric[key], (int, float)) and not isinstance(metric[key], bool):
                # the UI rounds (Default metric to 6 decimals): allow half a unit of the last digit shown
                digits = shown.split(" (")[0]
                decimals = len(digits.split(".")[1]) if "." in digits else 0
                shown_tol = 0.5 * 10 ** -decimals if decimals else 1e-12
                assert math.isclose(_number(shown), float(metric[key]), rel_tol=rel_tol, abs_tol=shown_tol), \
                    f"trial {tid}: {key} shows {shown!r}, the manager has {metric[key]!r}"


# -- an experiment, end to end ----------------------------------------------------------------

def _displayable(value) -> bool:
    """Whether NNI 3.0's table can render a metric value (React cannot render a plain object)."""
    if isinstance(value, (list, tuple)):
        return all(v is None or isinstance(v, (str, int, float, bool)) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def screenshot_size(n_metric_columns: int) -> tuple[int, int]:
    """A viewport wide enough for the "Trial jobs" table's default plus ``n`` metric columns."""
    return max(1600, 1400 + 200 * n_metric_columns), 1000


def check_webui(exp, expected_keys: Sequence[str], screenshot_path: str | os.PathLike) -> dict:
    """Renders a running (finished) experiment's "Trials detail" page in headless Chromium and
    asserts it shows every trial and, per trial, each of ``expected_keys`` that the trial reported
    with its value (each key must be reported by at least one trial, ``default`` by all);
    saves a full-page PNG to ``screenshot_path`` (and the DOM beside it, ``.html``).
    ``exp`` is a :class:`nnictl_helpers.NnictlExperiment`. Returns the rendered table."""
    from nnictl_helpers import final_metrics

    trials = sorted(exp.trials(), key=lambda t: t["sequenceId"])
    assert trials, "the experiment has no trials"
    assert len(trials) <= ROWS_PER_PAGE, (f"{len(trials)} trials: the table shows {ROWS_PER_PAGE} per page and this "
                                          f"check reads the first page only; run a smaller experiment")
    metrics = [(final_metrics([t]) or [None])[0] for t in trials]
    for t, m in zip(trials, metrics):
        assert m is not None, f"trial {t['trialJobId']} ({t['status']}) reported no final metric"
        if "default" in expected_keys:
            assert "default" in m, f"trial {t['trialJobId']} reported no 'default': {sorted(m)}"
        odd = [k for k in expected_keys if k in m and not _displayable(m[k])]
        assert not odd, (f"NNI 3.0's trial table cannot render structured metric values {odd} "
                         f"(trial {t['trialJobId']}); report scalars or leave these keys out")
    unreported = [k for k in expected_keys if not any(k in m for m in metrics)]
    assert not unreported, f"no trial reported {unreported}: {[sorted(m) for m in metrics]}"
    screenshot_path = Path(screenshot_path)
    n_columns = len([k for k in expected_keys if k != "default"])
    with Page(size=screenshot_size(n_columns)) as page:
        try:
            expected = {t["trialJobId"]: [k for k in expected_keys if k in m] for t, m in zip(trials, metrics)}
            table = read_trials_table(page, exp.url, exp.id, expected_keys, expected)
        except BaseException:
            with contextlib.suppress(Exception):   # what the page showed instead, for the person debugging
                page.screenshot(screenshot_path)
                screenshot_path.with_suffix(".html").write_text(page.html())
            raise
        time.sleep(1.5)   # let the charts' entry animation finish, for a readable screenshot
        page.screenshot(screenshot_path)
        screenshot_path.with_suffix(".html").write_text(page.html())
    check_trials_table(table, trials, metrics, expected_keys)
    return table


def run_experiment_and_check(config, port: int, expected_keys: Sequence[str], screenshot_path: str | os.PathLike,
                             workdir: str | os.PathLike, done_timeout: float = 420) -> dict:
    """``nnictl create`` ``config`` (a YAML path or a dict; see :func:`nnictl_helpers.load_config`)
    on ``port``, waits until it is DONE, checks its web UI with :func:`check_webui`, and stops it
    (also on failure). Returns the rendered "Trial jobs" table."""
    from nnictl_helpers import nnictl_experiment

    with nnictl_experiment(config, Path(workdir), port=port) as exp:
        status = exp.wait(timeout=done_timeout)
        assert status == "DONE", f"experiment {exp.id} ended {status}: {exp.get('/check-status')}"
        return check_webui(exp, expected_keys, screenshot_path)
