#!/usr/bin/env bash
# Start a throwaway dicom-emulator on a free port with a temporary data dir, wait for /health,
# run bench.py against it, stop it. Arguments go to bench.py:
#
#   benchmarks/run_local.sh --instances 200
#
# Environment:
#   PYTHON          interpreter for bench.py       (default: .venv/bin/python, else python3)
#   DICOM_EMULATOR  the emulator command           (default: .venv/bin/dicom-emulator, else on PATH)
#   SERVER_ARGS     extra `serve` flags, e.g. "--database-url postgresql://dicom:dicom@localhost/dicom"
#   KEEP_DATA=1     keep the temporary data dir and server log
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then python="$root/.venv/bin/python"; else python="python3"; fi
fi
emulator="${DICOM_EMULATOR:-}"
if [[ -z "$emulator" ]]; then
    if [[ -x "$root/.venv/bin/dicom-emulator" ]]; then
        emulator="$root/.venv/bin/dicom-emulator"
    else
        emulator="$(command -v dicom-emulator || true)"
    fi
fi
if [[ -z "$emulator" ]]; then
    echo "dicom-emulator not found: pip install -e . (or set DICOM_EMULATOR)" >&2
    exit 2
fi

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
url="http://127.0.0.1:$port"
workdir="$(mktemp -d "${TMPDIR:-/tmp}/dicom-bench-run.XXXXXX")"
log="$workdir/server.log"
server_pid=""

cleanup() {
    local status=$?
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -f "$log" ]]; then
        echo "--- server log (last 40 lines) ---" >&2
        tail -n 40 "$log" >&2 || true
    fi
    if [[ "${KEEP_DATA:-0}" == "1" ]]; then
        echo "kept $workdir" >&2
    else
        rm -rf "$workdir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck disable=SC2086  # SERVER_ARGS is a list of flags
"$emulator" serve --host 127.0.0.1 --port "$port" --data-dir "$workdir/data" --silent ${SERVER_ARGS:-} >"$log" 2>&1 &
server_pid=$!
echo "dicom-emulator (pid $server_pid) on $url, data in $workdir/data"

for _ in $(seq 1 120); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "dicom-emulator exited before it was healthy" >&2
        exit 1
    fi
    if "$python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/health" 2>/dev/null; then
        break
    fi
    sleep 0.5
done
if ! "$python" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/health" 2>/dev/null; then
    echo "dicom-emulator did not answer $url/health within 60 s" >&2
    exit 1
fi

"$python" "$root/benchmarks/bench.py" --url "$url" "$@"
