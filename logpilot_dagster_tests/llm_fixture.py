"""A real HTTP server on loopback speaking the OpenAI chat-completions shape, standing in for the LLM."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _ChatCompletionsHandler(BaseHTTPRequestHandler):
    """Answers with ``server.reply`` as the message content (or the raw ``server.payload``); ``server.trickle``
    sends the reply one byte every 50 ms, ``server.on_request`` runs before it answers. Every request body is
    kept in ``server.requests`` (parsed) and ``server.raw_requests`` (bytes)."""

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.raw_requests.append(raw)
        self.server.requests.append(json.loads(raw))
        if self.server.on_request:
            self.server.on_request()
        payload = self.server.payload or json.dumps({"choices": [{"message": {"content": self.server.reply}}]})
        payload = payload.encode() if isinstance(payload, str) else payload
        if self.server.trickle == "headers":
            return self._trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"." * 10_000)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self._trickle(payload) if self.server.trickle == "body" else self.wfile.write(payload)

    def _trickle(self, data: bytes):
        try:
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:  # the client hung up
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def llm_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletionsHandler)
    server.requests, server.raw_requests = [], []
    server.reply, server.payload, server.trickle, server.on_request = "", None, None, None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
