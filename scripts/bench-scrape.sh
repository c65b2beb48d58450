#!/usr/bin/env bash
# Benchmark: our fetcher (`anchor scrape --source urls:LIST`) against
# img2dataset over the same list of N JPEGs served by nginx on 127.0.0.1.
#
#   BENCH_IMAGES   number of image URLs (default 10000)
#   ANCHOR_BIN     the anchor binary (make bench passes the release build)
#   ANCHOR_PYTHON  the venv python (make bench passes .venv/bin/python)
#   BENCH_KEEP=1   keep the temporary folder (printed) for inspection
#
# Prints images/s, wall time and peak memory of both, and the ratio
# ours/img2dataset. Nothing but 127.0.0.1 is contacted (package installs
# aside). Needs root for `apt-get install nginx` when nginx is missing.
set -euo pipefail

N="${BENCH_IMAGES:-10000}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ANCHOR_BIN="${ANCHOR_BIN:-$ROOT/target/release/anchor}"
PY="${ANCHOR_PYTHON:-$ROOT/.venv/bin/python}"
# Distinct files on disk; the N URLs are symlinks onto this pool, so 70K
# URLs do not need 7 GB of disk while every URL is still its own request.
POOL="${BENCH_POOL:-1000}"
if [ "$POOL" -gt "$N" ]; then POOL="$N"; fi

log() { printf '[bench-scrape] %s\n' "$*" >&2; }

[ -x "$ANCHOR_BIN" ] || { log "no anchor binary at $ANCHOR_BIN (cargo build --release -p anchor-cli)"; exit 1; }
[ -x "$PY" ] || { log "no python at $PY (make python)"; exit 1; }

# --- tools --------------------------------------------------------------------
NGINX="$(command -v nginx || true)"
if [ -z "$NGINX" ] && [ -x /usr/sbin/nginx ]; then NGINX=/usr/sbin/nginx; fi
if [ -z "$NGINX" ] || [ ! -x /usr/bin/time ]; then
    log "installing nginx and GNU time from Debian"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx time
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
fi
if ! "$PY" -c 'import img2dataset, PIL, pyarrow' 2>/dev/null; then
    log "installing img2dataset into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install --quiet img2dataset pillow pyarrow
fi

# --- workspace and cleanup ----------------------------------------------------
TMP="$(mktemp -d -t bench-scrape.XXXXXX)"
NGINX_PID=""
cleanup() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill "$NGINX_PID" 2>/dev/null || true
        wait "$NGINX_PID" 2>/dev/null || true
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT INT TERM
# nginx workers run as an unprivileged user and must read the files.
chmod 755 "$TMP"
mkdir -p "$TMP/www/pool" "$TMP/www/img" "$TMP/nginx"

# --- images -------------------------------------------------------------------
log "generating $POOL JPEGs (linked as $N URLs)"
"$PY" - "$TMP/www" "$N" "$POOL" <<'EOF'
import os, random, sys
from PIL import Image, ImageDraw

www, n, pool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
sizes = []
for i in range(pool):
    w, h = rng.choice([(640, 480), (800, 533), (720, 480), (600, 600), (768, 512)])
    # Smooth colour gradient plus shapes plus noise: JPEG sizes like news
    # photos (tens to ~150 KB), not flat colour nor incompressible noise.
    base = Image.merge("RGB", [
        Image.linear_gradient("L").rotate(rng.randrange(360)).resize((w, h)),
        Image.radial_gradient("L").resize((w, h)),
        Image.linear_gradient("L").transpose(Image.Transpose.FLIP_TOP_BOTTOM).resize((w, h)),
    ])
    draw = ImageDraw.Draw(base)
    for _ in range(rng.randrange(5, 40)):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.randrange(5, 120)
        draw.ellipse((x - r, y - r, x + r, y + r),
                     fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.effect_noise((w, h), rng.uniform(10, 60)).convert("RGB")
    img = Image.blend(base, noise, rng.uniform(0.05, 0.3))
    path = os.path.join(www, "pool", f"{i}.jpg")
    img.save(path, "JPEG", quality=rng.choice([80, 85, 90]))
    sizes.append(os.path.getsize(path))
for i in range(n):
    os.symlink(os.path.join("..", "pool", f"{i % pool}.jpg"), os.path.join(www, "img", f"{i}.jpg"))
sizes.sort()
print(f"pool sizes: min {sizes[0] // 1024} KB, median {sizes[len(sizes) // 2] // 1024} KB, "
      f"max {sizes[-1] // 1024} KB", file=sys.stderr)
EOF
printf 'User-agent: *\nAllow: /\n' > "$TMP/www/robots.txt"
chmod -R a+rX "$TMP/www"

# --- nginx on 127.0.0.1 -------------------------------------------------------
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
cat > "$TMP/nginx/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    types { image/jpeg jpg; text/plain txt; }
    server {
        listen 127.0.0.1:$PORT;
        root $TMP/www;
    }
}
EOF
"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" &
NGINX_PID=$!
BASE="http://127.0.0.1:$PORT"
"$PY" - "$BASE/img/0.jpg" <<'EOF'
import sys, time, urllib.request
for _ in range(100):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=1) as r:
            r.read()
        sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("nginx did not come up")
EOF
log "nginx serving $TMP/www on $BASE (pid $NGINX_PID)"

# --- the URL list -------------------------------------------------------------
LIST="$TMP/urls.csv"
{
    echo "url,caption"
    for ((i = 0; i < N; i++)); do echo "$BASE/img/$i.jpg,Benchmark photo number $i"; done
} > "$LIST"

# Runs a command under /usr/bin/time -v and a sampler of the whole process
# tree's RSS (img2dataset forks workers; time -v reports only the largest
# single process). Writes "wall_s tree_peak_kb time_peak_kb" to $1.
measure() {
    local result="$1"; shift
    "$PY" - "$result" "$@" <<'EOF'
import os, subprocess, sys, time

result, cmd = sys.argv[1], sys.argv[2:]

def tree_rss_kb(root):
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, ValueError, IndexError):
            pass
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total

timefile = result + ".time"
start = time.monotonic()
proc = subprocess.Popen(["/usr/bin/time", "-v", "-o", timefile] + cmd)
peak = 0
while proc.poll() is None:
    peak = max(peak, tree_rss_kb(proc.pid))
    time.sleep(0.05)
wall = time.monotonic() - start
time_peak = 0
with open(timefile) as f:
    for line in f:
        if "Maximum resident set size" in line:
            time_peak = int(line.rsplit(":", 1)[1])
with open(result, "w") as f:
    f.write(f"{wall:.3f} {peak} {time_peak} {proc.returncode}\n")
EOF
}

# --- img2dataset --------------------------------------------------------------
log "img2dataset over $N URLs"
I2D_OUT="$TMP/i2d"
I2D_BIN="$(dirname "$PY")/img2dataset"
measure "$TMP/i2d.result" "$I2D_BIN" \
    --url_list "$LIST" --input_format csv --url_col url --caption_col caption \
    --output_format parquet --output_folder "$I2D_OUT" \
    --resize_mode no --disable_all_reencoding True \
    --processes_count 2 --thread_count 32 --number_sample_per_shard 2500 \
    --timeout 10 --retries 0 --disallowed_header_directives '[]' \
    --distributor multiprocessing --enable_wandb False >"$TMP/i2d.log" 2>&1 \
    || true
I2D_OK="$("$PY" - "$I2D_OUT" <<'EOF'
import glob, json, sys
print(sum(json.load(open(p)).get("successes", 0) for p in glob.glob(sys.argv[1] + "/*_stats.json")))
EOF
)"

# --- ours ---------------------------------------------------------------------
log "anchor scrape over $N URLs"
OURS_OUT="$TMP/anchor"
measure "$TMP/ours.result" "$ANCHOR_BIN" --quiet --out "$OURS_OUT" scrape \
    --source "urls:$LIST" --allow-private-addresses --rate 100000 >"$TMP/ours.log" 2>&1 \
    || true
OURS_OK="$("$PY" - "$OURS_OUT/pairs" <<'EOF'
import glob, sys
import pyarrow.parquet as pq
n = 0
for p in sorted(glob.glob(sys.argv[1] + "/part-*.parquet")):
    n += sum(1 for s in pq.read_table(p, columns=["status"]).column("status").to_pylist() if s == "success")
print(n)
EOF
)"

# --- report -------------------------------------------------------------------
read -r I2D_WALL I2D_TREE I2D_MAX I2D_RC < "$TMP/i2d.result"
read -r OURS_WALL OURS_TREE OURS_MAX OURS_RC < "$TMP/ours.result"
if [ "$I2D_RC" != 0 ]; then log "img2dataset exited $I2D_RC:"; tail -n 20 "$TMP/i2d.log" >&2; fi
if [ "$OURS_RC" != 0 ]; then log "anchor exited $OURS_RC:"; tail -n 20 "$TMP/ours.log" >&2; fi
"$PY" - "$N" "$ANCHOR_BIN" "$I2D_OK" "$I2D_WALL" "$I2D_TREE" "$I2D_MAX" \
    "$OURS_OK" "$OURS_WALL" "$OURS_TREE" "$OURS_MAX" <<'EOF'
import sys
n, binary = int(sys.argv[1]), sys.argv[2]
i2d_ok, i2d_wall, i2d_tree, i2d_max = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
our_ok, our_wall, our_tree, our_max = int(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9]), int(sys.argv[10])
i2d_rate = i2d_ok / i2d_wall if i2d_wall > 0 else 0.0
our_rate = our_ok / our_wall if our_wall > 0 else 0.0
print(f"scrape benchmark: {n} image URLs on 127.0.0.1 (nginx), anchor binary {binary}")
print(f"{'':<12} {'images ok':>10} {'wall s':>9} {'images/s':>10} {'peak RSS tree MB':>17} {'peak RSS max-proc MB':>21}")
print(f"{'img2dataset':<12} {i2d_ok:>10} {i2d_wall:>9.2f} {i2d_rate:>10.1f} {i2d_tree / 1024:>17.1f} {i2d_max / 1024:>21.1f}")
print(f"{'anchor':<12} {our_ok:>10} {our_wall:>9.2f} {our_rate:>10.1f} {our_tree / 1024:>17.1f} {our_max / 1024:>21.1f}")
ratio = our_rate / i2d_rate if i2d_rate > 0 else float("nan")
mem = our_tree / i2d_tree if i2d_tree > 0 else float("nan")
print(f"ratio ours/img2dataset: images/s {ratio:.2f}x, peak memory (tree) {mem:.2f}x")
if i2d_ok < n or our_ok < n:
    print(f"warning: not every image succeeded (img2dataset {i2d_ok}, anchor {our_ok} of {n})")
EOF
