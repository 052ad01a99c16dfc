//! The Examples sections of `tracer --help` and each subcommand's help:
//! the commands a newcomer types first, each with what it shows.

pub const TRACER: &str = "\
Examples:
  tracer demo                              three traced requests against a local server
  tracer trace -n 3 https://example.com/   one timeline per request, kernel events included
  tracer attach --pid 1234 --duration 10   a running process's connections and requests
  tracer run -- curl -s http://127.0.0.1:8080/
  tracer check                             what this machine supports, and what is missing
  tracer completions bash > ~/.local/share/bash-completion/completions/tracer

Exit codes: 0 ok; 1 a request or the trace failed; 2 usage; 3 --expect did not hold; \
4 missing privilege or kernel support; 130/143 interrupted.";

pub const TRACE: &str = "\
Examples:
  tracer trace https://example.com/
  tracer trace -n 5 --interval 200 --expect reuse http://127.0.0.1:8080/health
  tracer trace --format json -o trace.jsonl https://example.com/
  tracer trace -X POST -H 'Content-Type: application/json' -d '{\"a\":1}' http://127.0.0.1:8080/
  tracer trace --no-ebpf https://example.com/     client hooks only, no privilege
  tracer trace --otlp http://127.0.0.1:4318 --propagate https://example.com/";

pub const ATTACH: &str = "\
Examples:
  tracer attach --pid 1234                      until the process exits or Ctrl-C
  tracer attach --name nginx --duration 30 --follow-forks
  tracer attach --pid 1234,5678 --format json -o conns.jsonl
  tracer attach --pid 1234 --stat               one line of totals per second
  tracer attach --pid 1234 --otlp http://127.0.0.1:4318";

pub const RUN: &str = "\
Examples:
  tracer run -- curl -s https://example.com/
  tracer run --format json -- python3 client.py
  tracer run --expect reuse -- ./load-test --requests 100
  tracer run --user nobody -- wget -qO- http://127.0.0.1:8080/";

pub const DEMO: &str = "\
Examples:
  tracer demo                  needs root (or CAP_BPF and CAP_PERFMON)
  tracer demo --no-ebpf        client hooks only, any user
  tracer demo --format json";

pub const CHECK: &str = "\
Examples:
  tracer check                 exit 0 when this machine can trace, else 4
  tracer check --pid 1234      also which TLS libraries of 1234 attach can read";

pub const COMPLETIONS: &str = "\
Examples:
  tracer completions bash > ~/.local/share/bash-completion/completions/tracer
  tracer completions zsh > ~/.zfunc/_tracer        (with fpath+=~/.zfunc)
  tracer completions fish > ~/.config/fish/completions/tracer.fish";
