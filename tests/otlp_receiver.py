"""A real OTLP/HTTP receiver for tracer's export tests, sharing no code with
the exporter: PyPI's opentelemetry-proto decodes ExportTraceServiceRequest.

Usage: otlp_receiver.py OUT.jsonl
Prints "listening PORT" once bound to 127.0.0.1, then appends one JSON line
per span it receives to OUT.jsonl (with the resource's attributes), and one
{"post": N} line per POST before the spans of it. A GET is answered 200 and
written as {"get": PATH, "headers": {..}}: a traced server for --propagate.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

OUT = sys.argv[1]
POSTS = 0


def value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    return getattr(v, kind)


def attributes(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global POSTS
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path != "/v1/traces" or self.headers.get("content-type") != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        POSTS += 1
        with open(OUT, "a") as out:
            out.write(json.dumps({"post": POSTS, "headers": dict(self.headers)}) + "\n")
            for rs in request.resource_spans:
                resource = attributes(rs.resource.attributes)
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.write(json.dumps({
                            "resource": resource,
                            "scope": ss.scope.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent_span_id": s.parent_span_id.hex(),
                            "name": s.name,
                            "kind": s.kind,
                            "start": s.start_time_unix_nano,
                            "end": s.end_time_unix_nano,
                            "status": s.status.code,
                            "attributes": attributes(s.attributes),
                            "events": [
                                {"name": e.name, "time": e.time_unix_nano,
                                 "attributes": attributes(e.attributes)}
                                for e in s.events
                            ],
                        }) + "\n")
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_GET(self):
        with open(OUT, "a") as out:
            out.write(json.dumps({"get": self.path, "headers": dict(self.headers)}) + "\n")
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
