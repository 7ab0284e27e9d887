"""`python -m inference_server serve ... <mode>`: behaves like the real server's start-up in the
ways the add-on must handle. The last argument picks the behaviour:
  --fake-ready      print a log line and the ready line, answer /v1/health, exit on /v1/shutdown
  --fake-die        print a traceback-like message on stderr and exit 3 before being ready
  --fake-die-later  get ready, then die with exit code 1 after a moment
  --fake-silent     never get ready
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

mode = sys.argv[-1]
if mode == "--fake-die":
    print("Traceback (most recent call last):\nModuleNotFoundError: No module named 'torch'", file=sys.stderr)
    sys.exit(3)
if mode == "--fake-silent":
    time.sleep(60)
    sys.exit(0)

token = os.environ["GLIMPSE_SERVER_TOKEN"]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {token}":
            return self._answer(401, {"error": {"code": "unauthorized", "message": "bad token"}})
        self._answer(200, {"version": "fake", "argv": sys.argv[1:]})

    def do_POST(self):
        if self.path == "/v1/shutdown" and self.headers.get("Authorization") == f"Bearer {token}":
            self._answer(202, {})
            threading.Thread(target=server.shutdown).start()
        else:
            self._answer(404, {"error": {"code": "not_found", "message": self.path}})


server = HTTPServer(("127.0.0.1", 0), Handler)
port = server.server_address[1]
print("glimpse: starting (a log line before the ready line)", flush=True)
print("GLIMPSE_SERVER_READY " + json.dumps({"port": port, "url": f"http://127.0.0.1:{port}",
                                           "pid": os.getpid(), "version": "fake"}), flush=True)
if mode == "--fake-die-later":
    time.sleep(0.3)
    print("RuntimeError: CUDA out of memory", file=sys.stderr, flush=True)
    os._exit(1)
server.serve_forever(poll_interval=0.05)
