"""The dashboard as a person sees it (issue 24, items 2 and 3): `virshle web` over two
nodes, one of them reached over SSH (an sshd on loopback), driven by Debian's Chromium
(headless, through Selenium and chromium-driver)."""

from __future__ import annotations

import http.cookiejar
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import attrs
import pytest

from virshle_core.testing.netlab import HostNs, run
from virshle_core.testing.sshlab import SshAgent, Sshd
from tests.support import GUEST_DIR, VIRSHLE, Daemon, free_port, wait_for, write_guest_config

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
for tool in ("chromium", "chromedriver", "qemu-system-x86_64"):
    if not shutil.which(tool):
        pytestmark.append(pytest.mark.skip(reason=f"{tool} is not installed"))
selenium = pytest.importorskip("selenium")

from selenium.webdriver import Chrome, ChromeOptions  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@attrs.define
class Dashboard:
    url: str
    token: str
    browser: Chrome
    nodes: dict
    env: dict

    def open(self, path: str = "/") -> None:
        self.browser.get(self.url + path)

    def cli(self, *args: str):
        return subprocess.run([VIRSHLE, *args], env=self.env, capture_output=True, text=True,
                              timeout=120)

    def uuid_of(self, name: str) -> str:
        import json

        return json.loads(self.cli("vm", "info", name, "--json").stdout)["uuid"]

    def wait(self, condition, timeout: float = 15):
        """Until ``condition(browser)``; a page that changes under it (a click that loads
        another, a row redrawn) is looked at again."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

        return WebDriverWait(self.browser, timeout, poll_frequency=0.1, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(condition)

    def text(self, css: str) -> str:
        return self.browser.find_element(By.CSS_SELECTOR, css).text


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory, guest):
    base = tmp_path_factory.mktemp("web")
    started: list = []
    web = browser = None
    try:
        nodes = {}
        for name in ("local", "remote"):
            (base / name).mkdir()
            nodes[name] = Daemon(base / name, write_guest_config(base / name, GUEST_DIR)).start()
            started.append(nodes[name])
        key = base / "id_ed25519"
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key])
        agent = SshAgent(base / "agent", [key])
        started.append(agent)
        sshd = Sshd(HostNs(), base / "sshd", "127.0.0.1", key.with_suffix(".pub"), port=free_port())
        started.append(sshd)
        home = base / "home"
        (home / ".ssh").mkdir(parents=True)
        (home / ".ssh" / "known_hosts").write_text(sshd.known_hosts_line() + "\n")
        config = base / "cli.toml"
        config.write_text(
            f'[[node]]\nname = "local"\nurl = "unix://{nodes["local"].socket}"\n\n'
            f'[[node]]\nname = "remote"\n'
            f'url = "ssh://root@127.0.0.1:{sshd.port}{nodes["remote"].socket}"\npersist = 0\n')
        env = {**os.environ, "HOME": str(home), "SSH_AUTH_SOCK": str(agent.socket),
               "VIRSHLE_CONFIG": str(config), "XDG_CACHE_HOME": str(home / ".cache")}
        port = free_port()
        web = subprocess.Popen([VIRSHLE, "web", "--listen", f"127.0.0.1:{port}"], env=env,
                               stdout=subprocess.PIPE, stderr=open(base / "web.log", "wb"),
                               text=True)
        printed = web.stdout.readline() + web.stdout.readline()
        token = printed.rsplit("token=", 1)[1].strip()
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), timeout=20, what="virshle web to answer")
        options = ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={base / 'chromium'}", "--window-size=1280,900"):
            options.add_argument(flag)
        browser = Chrome(options=options, service=Service(shutil.which("chromedriver")))
        dashboard = Dashboard(url, token, browser, nodes, env)
        dashboard.open(f"/?token={token}")  # the cookie, from then on
        yield dashboard
    finally:
        if browser is not None:
            browser.quit()
        if web is not None:
            web.terminate()
            web.wait(5)  # it stops within its 2 s shutdown timeout (it took 10 s and more)
        for part in reversed(started):
            part.close() if isinstance(part, Daemon) else part.stop()


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return True  # 401: it answers
    except OSError:
        return False
    return True


def test_the_fleet_shows_both_nodes_one_over_ssh(dashboard):
    dashboard.open("/")
    cards = {card.get_attribute("data-node"): card
             for card in dashboard.browser.find_elements(By.CSS_SELECTOR, "section.card")}
    assert set(cards) == {"local", "remote"}
    for name, card in cards.items():
        assert "online" in card.find_element(By.CSS_SELECTOR, ".status").text
        assert len(card.find_elements(By.CSS_SELECTOR, ".bar")) == 3
    assert cards["remote"].find_element(By.CSS_SELECTOR, ".url").text.startswith("ssh://")
    assert "Fleet" in dashboard.browser.title


def test_an_offline_node_is_shown_with_its_error(dashboard):
    remote = dashboard.nodes["remote"]
    remote.stop()
    try:
        dashboard.open("/")
        card = dashboard.browser.find_element(By.CSS_SELECTOR, 'section[data-node="remote"]')
        assert "online" not in card.find_element(By.CSS_SELECTOR, ".status").text
        assert "Error:" in card.text
    finally:
        remote.start()


def test_without_the_token_401_and_without_csrf_403(dashboard):
    try:
        urllib.request.urlopen(dashboard.url + "/vms", timeout=5)
        raise AssertionError("a request without the token was answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    assert opener.open(f"{dashboard.url}/?token={dashboard.token}", timeout=10).status == 200
    body = urllib.parse.urlencode({"template": "tiny", "name": "forged"}).encode()
    try:
        opener.open(dashboard.url + "/create", data=body, timeout=10)
        raise AssertionError("a POST without the CSRF token was answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 403
    assert "forged" not in dashboard.cli("vm", "ls").stdout


def test_start_by_clicking_and_the_cli_changes_the_open_page(dashboard):
    assert dashboard.cli("vm", "create", "-t", "tiny", "--name", "clicked", "--node",
                         "local").returncode == 0
    uuid = dashboard.uuid_of("clicked")
    dashboard.open(f"/vms/local/{uuid}")
    assert dashboard.text("#state") == "created"
    dashboard.browser.find_element(By.CSS_SELECTOR, 'button[value="start"]').click()
    dashboard.wait(lambda b: b.find_element(By.ID, "state").text == "running")
    assert "Started." in dashboard.text(".said")

    dashboard.open("/vms")  # live: a stop from the command line shows here
    dashboard.wait(lambda b: b.find_element(By.ID, "live").text == "live")
    cell = f'tr[data-uuid="{uuid}"] .state'
    assert dashboard.text(cell) == "running"
    stopped_at = time.monotonic()
    assert dashboard.cli("vm", "stop", "--force", "clicked").returncode == 0
    dashboard.wait(lambda b: b.find_element(By.CSS_SELECTOR, cell).text == "shutdown", timeout=5)
    print(f"the page showed the stop {time.monotonic() - stopped_at:.2f} s after the command began")
    assert dashboard.cli("vm", "start", "clicked").returncode == 0
    dashboard.wait(lambda b: b.find_element(By.CSS_SELECTOR, cell).text == "running", timeout=3)


def test_the_console_in_the_browser(dashboard):
    made = dashboard.cli("vm", "launch", "-t", "tiny", "--name", "typed", "--node", "remote")
    assert made.returncode == 0, made.stderr
    uuid = dashboard.uuid_of("typed")
    wait_for(lambda: "VIRSHLE-GUEST-READY" in dashboard.cli("vm", "logs", "typed").stdout,
             timeout=120, what="the guest to boot")
    dashboard.open(f"/vms/remote/{uuid}/console")
    dashboard.wait(lambda b: b.execute_script(
        "return window.virshleConsole && window.virshleConsole.socket.readyState === 1"))
    terminal = dashboard.browser.find_element(By.CSS_SELECTOR, "#terminal textarea")
    terminal.send_keys("echo web-$((40+2))" + Keys.ENTER)

    def screen(browser) -> str:
        return browser.execute_script(
            "var b = window.virshleConsole.term.buffer.active, out = [];"
            "for (var i = 0; i < b.length; i++) out.push(b.getLine(i).translateToString(true));"
            "return out.join('\\n');")
    dashboard.wait(lambda b: "web-42" in screen(b).replace("web-$((40+2))", ""), timeout=30)


def test_create_from_the_form_and_a_refusal_rendered_as_the_cli_says_it(dashboard):
    def submit(name: str) -> None:
        dashboard.open("/create")
        browser = dashboard.browser
        browser.find_element(By.ID, "template").send_keys("tiny")
        browser.find_element(By.ID, "node").send_keys("local")
        browser.find_element(By.ID, "name").send_keys(name)
        browser.find_element(By.CSS_SELECTOR, "form.create button[type=submit]").click()

    submit("formed")
    dashboard.wait(lambda b: "formed" in b.find_element(By.TAG_NAME, "h1").text)
    assert "Created." in dashboard.text(".said")
    assert "formed" in dashboard.cli("vm", "ls").stdout
    submit("formed")  # the name is taken
    dashboard.wait(lambda b: b.find_elements(By.CSS_SELECTOR, ".problem"))
    assert dashboard.text(".problem .error").startswith("Error: ")
    assert "formed" in dashboard.text(".problem .error")
    assert dashboard.text(".problem .hint").startswith("Hint: ")


def test_vms_filter_and_sort_without_javascript(dashboard):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{dashboard.url}/?token={dashboard.token}", timeout=10)
    page = opener.open(f"{dashboard.url}/vms?q=form&sort=name", timeout=10).read().decode()
    assert "formed" in page and "clicked" not in page  # server-side: no script needed
    page = opener.open(f"{dashboard.url}/vms?state=running&sort=node&order=desc",
                       timeout=10).read().decode()
    assert "clicked" in page and "formed" not in page
    assert page.index("typed") < page.index("clicked")  # remote before local, descending
