"""The client and an HTTPS server on 127.0.0.1 with a certificate made in the test (by the same
code as `serve --tls-self-signed`): trust by the system store, a CA file, or a pinned SHA-256
fingerprint, and a changed certificate refused before the token is sent."""
import json
import ssl
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from glimpse_syncdreamer_addon.core.client import GlimpseClient, ServerError
from glimpse_syncdreamer_addon.core.server_settings import REMOTE, ServerSettings
from glimpse_syncdreamer_addon.core.server_trust import normalize_fingerprint
from glimpse_syncdreamer_addon.core.setup_check import MISSING, OK, check_remote
from inference_server.server.tls import certificate_fingerprint, machine_names, make_self_signed

TOKEN = "secret-token"


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.seen.append(self.headers.get("Authorization"))
        data = json.dumps({"version": "tls"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _certificate(folder):
    folder.mkdir()
    cert, key = folder / "cert.pem", folder / "key.pem"
    make_self_signed(cert, key, machine_names("127.0.0.1"))
    return cert, key


@pytest.fixture
def https_server(tmp_path):
    cert, key = _certificate(tmp_path / "server")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.seen, server.cert = [], cert
    server.url = f"https://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_an_unknown_certificate_is_not_trusted_by_the_system_store(https_server):
    with pytest.raises(ServerError) as info:
        GlimpseClient(https_server.url, TOKEN).health()
    assert info.value.code == "untrusted_certificate"
    assert "fingerprint" in info.value.message and "CA file" in info.value.message
    assert https_server.seen == []


def test_the_certificate_as_ca_file_is_trusted(https_server):
    assert GlimpseClient(https_server.url, TOKEN, ca_file=str(https_server.cert)).health() == {"version": "tls"}
    assert https_server.seen == [f"Bearer {TOKEN}"]


def test_a_pinned_fingerprint_is_trusted_in_any_spelling(https_server):
    fingerprint = certificate_fingerprint(https_server.cert)  # AB:CD:... as serve prints it
    for spelling in (fingerprint, fingerprint.replace(":", "").lower(), f"sha256:{fingerprint}"):
        assert GlimpseClient(https_server.url, TOKEN, fingerprint=spelling).health() == {"version": "tls"}
    assert len(https_server.seen) == 3


def test_a_changed_certificate_is_an_error_that_says_so(https_server, tmp_path):
    other, _ = _certificate(tmp_path / "other")
    pinned, presented = certificate_fingerprint(other), certificate_fingerprint(https_server.cert)
    with pytest.raises(ServerError) as info:
        GlimpseClient(https_server.url, TOKEN, fingerprint=pinned).health()
    assert info.value.code == "certificate_changed"
    assert "different certificate than the pinned one" in info.value.message
    assert pinned in info.value.message and presented in info.value.message
    assert https_server.seen == []  # the token was not sent


def test_a_ca_file_that_did_not_sign_the_certificate_is_refused(https_server, tmp_path):
    other, _ = _certificate(tmp_path / "other")
    with pytest.raises(ServerError) as info:
        GlimpseClient(https_server.url, TOKEN, ca_file=str(other)).health()
    assert info.value.code == "untrusted_certificate" and https_server.seen == []


def test_settings_that_do_not_fit_are_refused_at_once(tmp_path):
    with pytest.raises(ServerError, match="not https://") as info:
        GlimpseClient("http://gpu-box:8765", TOKEN, fingerprint="ab" * 32)
    assert info.value.code == "bad_settings"
    with pytest.raises(ServerError, match="not a SHA-256 fingerprint"):
        GlimpseClient("https://gpu-box:8765", TOKEN, fingerprint="12:34")
    with pytest.raises(ServerError, match="cannot be used"):
        GlimpseClient("https://gpu-box:8765", TOKEN, ca_file=str(tmp_path / "missing.pem"))


def test_http_client_to_https_server_says_what_to_check(https_server):
    with pytest.raises(ServerError) as info:
        GlimpseClient(https_server.url.replace("https://", "http://"), TOKEN, timeout=5).health()
    assert info.value.code in ("unreachable", "bad_answer")
    assert https_server.seen == []


def test_normalize_fingerprint():
    assert normalize_fingerprint("") == ""
    assert normalize_fingerprint("SHA256 Fingerprint=" + ":".join(["AB"] * 32)) == "ab" * 32


def test_remote_settings_carry_the_pin_to_the_setup_check(https_server, tmp_path):
    fingerprint = certificate_fingerprint(https_server.cert)
    settings = ServerSettings(mode=REMOTE, url=https_server.url, token=TOKEN, fingerprint=fingerprint)
    assert [item.status for item in check_remote(settings)] == [OK]
    other, _ = _certificate(tmp_path / "other")
    changed = check_remote(replace(settings, fingerprint=certificate_fingerprint(other)))
    assert changed[0].status == MISSING and "different certificate" in changed[0].detail
    assert [item.status for item in check_remote(replace(settings, fingerprint="", ca_file=str(https_server.cert)))] == [OK]
