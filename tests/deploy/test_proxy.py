"""The compose file's nginx, run for real in front of a test stack.

What `deploy/` promises about the edge, checked with the distribution's
nginx rather than by reading the file: the configuration loads, a slow client
is cut at the proxy, and the gateway behind it counts each child by the
address nginx passes on (X-Forwarded-For from a trusted proxy), not by the
proxy's own address. Clients come from other loopback addresses
(tests/abuse/source.py); nothing leaves this machine.
"""

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.abuse.source import raw_socket_from, session_from
from tests.stack import Stack, free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")]


def compose_proxy_conf():
    spec = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    (config,) = spec["services"]["proxy"]["configs"]
    return spec["configs"][config["source"]]["content"].replace("$$", "$")


def local_conf(workdir, listen_port, gateway_port):
    """The compose configuration with only what ties it to compose changed:
    Docker's resolver and the service name become this stack's port."""
    conf = compose_proxy_conf()
    conf = conf.replace("resolver 127.0.0.11 valid=5s ipv6=off;", "")
    conf = conf.replace("server gateway:8000 resolve;", f"server 127.0.0.1:{gateway_port};")
    conf = conf.replace("zone chatvakt_gateway 64k;", "")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    conf = conf.replace("access_log /dev/stdout", f"access_log {workdir}/access.log")
    temp = "\n".join(
        f"{name}_temp_path {workdir}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"pid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;\n"
        f"events {{ worker_connections 4096; }}\n"
        f"http {{\n{temp}\n{conf}\n}}\n"
    )


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("proxy")
    # The gateway trusts the proxy (it connects from 127.0.0.1) and limits
    # chat openings below nginx's own burst, so a 429 in its JSON shape
    # proves the gateway itself counted the child's address.
    stack = Stack(
        workdir,
        env={
            "CHATVAKT_TRUSTED_PROXIES": "127.0.0.1/32",
            "CHATVAKT_CHAT_OPEN_BURST": "5",
            "CHATVAKT_CHAT_OPEN_PER_MIN": "1",
        },
    ).start()
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(local_conf(workdir, port, stack.port))
    check = subprocess.run([NGINX, "-t", "-p", str(workdir), "-c", str(conf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # One process, as the invoking user, in the foreground: stopped with the test.
    proc = subprocess.Popen(
        [NGINX, "-p", str(workdir), "-c", str(conf), "-g", "daemon off; master_process off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "stack": stack, "workdir": workdir}
    proc.terminate()
    proc.wait(timeout=10)
    stack.stop()


def test_gateway_counts_the_child_behind_the_proxy(proxied):
    prankster = session_from("127.0.0.21")
    codes = [prankster.post(proxied["url"] + "/api/v1/chats", json={}, timeout=10) for _ in range(8)]
    statuses = [r.status_code for r in codes]
    print("chat openings from one address through nginx:", statuses)
    assert statuses[:5] == [201] * 5
    refused = codes[5]
    assert refused.status_code == 429
    # The gateway's error shape, not nginx's HTML page: the gateway limited it.
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # Another child behind the same proxy is a different address to the gateway.
    other = session_from("127.0.0.22").post(proxied["url"] + "/api/v1/chats", json={}, timeout=10)
    assert other.status_code == 201, other.text


def test_a_forged_forwarded_for_is_replaced_by_the_proxy(proxied):
    # The client claims to be someone else; nginx overwrites the header with
    # the address it sees, so the claim buys no fresh limit.
    liar = session_from("127.0.0.23")
    statuses = []
    for n in range(7):
        response = liar.post(
            proxied["url"] + "/api/v1/chats", json={}, headers={"X-Forwarded-For": f"10.9.9.{n}"}, timeout=10
        )
        statuses.append(response.status_code)
    print("forged X-Forwarded-For through nginx:", statuses)
    assert statuses.count(201) == 5 and statuses[-1] == 429


def test_slow_headers_are_cut_at_the_proxy(proxied):
    sock = raw_socket_from("127.0.0.24", proxied["port"], timeout=30)
    started = time.monotonic()
    sock.sendall(b"POST /api/v1/chats HTTP/1.1\r\nHost: x\r\n")
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    elapsed = time.monotonic() - started
    sock.close()
    print(f"nginx closed an unfinished header after {elapsed:.1f} s")
    assert elapsed < 15


def test_the_page_through_the_proxy_opens_a_chat_and_a_socket(proxied):
    """A browser's Origin is the proxy's address with its port: the gateway
    must see the same host (nginx passes $http_host), or it refuses the page's
    own chat and socket as foreign."""
    from tests.client import Socket

    url = proxied["url"]
    child = session_from("127.0.0.25")
    opened = child.post(url + "/api/v1/chats", json={"message": "hei"}, timeout=10, headers={"Origin": url})
    assert opened.status_code == 201, opened.text
    foreign = child.post(url + "/api/v1/chats", json={}, timeout=10, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    socket_ = Socket(url, opened.json()["token"])  # authenticates through nginx
    socket_.close()
