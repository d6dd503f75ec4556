#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Video probing (issue 9; see bench/README.md, "video.sh"): media::probe_video() through the
# bench-only driver stowage_video_probe, next to ffprobe, on one large video in three containers:
#   1. MP4 with its moov at the front (-movflags +faststart)
#   2. the same MP4 with its moov at the end (as most cameras and ffmpeg write it)
#   3. the same stream in Matroska (no complete index: every packet is demuxed)
# For each: wall time and bytes read of
#   stowage probe (every frame's time)  vs  ffprobe -count_frames (decodes every frame),
#   ffprobe -count_packets (demuxes every packet, the like-for-like peer) and
#   ffprobe -show_streams -show_format (the header only, no frame list)
# plus the time to decode the 33p preview frame vs ffmpeg -ss T -frames:v 1.
# ffprobe's bytes are the read(2) bytes the kernel counted for it (/proc/<pid>/io rchar of a
# reaped child); Stowage's are the driver's count of what its reader returned. All runs are with
# the file in the page cache: this measures bytes asked for (what a remote store would send),
# not disk speed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=bench/lib.sh
source "$here/lib.sh"

BENCH_VIDEO_MB=${BENCH_VIDEO_MB:-1024}   # size of the large video, MiB (approximately)
BENCH_RUNS=${BENCH_RUNS:-3}              # runs per measurement, median reported
BENCH_DECODE_RUNS=${BENCH_DECODE_RUNS:-1} # runs of ffprobe -count_frames (it decodes the whole file)
VIDEO_PROBE_BIN=${VIDEO_PROBE_BIN:-$repo/build-bench/stowage_video_probe}

require_tools ffmpeg ffprobe python3 awk

# The driver is not part of `ninja all`: build it on demand, like ensure_stowage does stowage.
if [[ ! -x $VIDEO_PROBE_BIN ]]; then
  log "building stowage_video_probe into build-bench"
  (cd "$repo" && cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release \
     -DSTOWAGE_BUILD_TESTS=OFF >/dev/null && ninja -C build-bench -j1 stowage_video_probe) >&2
fi

start_workdir video
start_report -video
frame_rows=()

# measure CMD... -> "seconds rchar": wall time and bytes read(2) by CMD (stdout to $work/out).
cat >"$work/measure.py" <<'EOF'
import subprocess, sys, time
def rchar():
    with open("/proc/self/io") as f:
        return int(next(l for l in f if l.startswith("rchar:")).split()[1])
with open(sys.argv[1], "wb") as out:
    before = rchar()
    t0 = time.monotonic()
    rc = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL).returncode
    t1 = time.monotonic()
    after = rchar()
if rc != 0:
    sys.exit(f"{sys.argv[2]} failed with status {rc}")
print(f"{t1 - t0:.4f} {after - before}")
EOF
measure() { python3 "$work/measure.py" "$work/out" "$@"; }

# median_of N CMD... -> sets m_secs (median) and m_bytes (of the last run), keeps $work/out
median_of() {
  local n=$1 i secs="" line
  shift
  for ((i = 0; i < n; i++)); do
    line=$(measure "$@")
    secs+=" ${line% *}"
    m_bytes=${line#* }
  done
  m_secs=$(echo "$secs" | median)
}

# ---------------------------------------------------------------------------------------------
# The large video: one minute of 720p H.264 at ~20 Mbit/s (ultrafast, cheap to encode), repeated
# with -c copy until it is BENCH_VIDEO_MB, then muxed three ways.
log "encoding a 60 s 720p clip"
ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 60 -c:v libx264 \
  -preset ultrafast -b:v 20M -maxrate 20M -bufsize 40M -g 60 -pix_fmt yuv420p "$work/base.mp4"
base_bytes=$(stat -c %s "$work/base.mp4")
repeat=$(awk -v want="$BENCH_VIDEO_MB" -v b="$base_bytes" 'BEGIN { n = int(want * 1048576 / b + 0.5); print n < 1 ? 1 : n }')
for ((i = 0; i < repeat; i++)); do echo "file '$work/base.mp4'"; done >"$work/list.txt"
log "muxing $repeat copies: faststart MP4, moov-at-end MP4, MKV"
ffmpeg -nostdin -v error -y -f concat -safe 0 -i "$work/list.txt" -c copy "$work/end.mp4"
ffmpeg -nostdin -v error -y -i "$work/end.mp4" -c copy -movflags +faststart "$work/faststart.mp4"
ffmpeg -nostdin -v error -y -i "$work/end.mp4" -c copy "$work/video.mkv"
rm -f "$work/base.mp4"

cmd "ffmpeg -f lavfi -i testsrc2=size=1280x720:rate=30 -t 60 -c:v libx264 -preset ultrafast -b:v 20M -maxrate 20M -bufsize 40M -g 60 -pix_fmt yuv420p base.mp4"
cmd "ffmpeg -f concat -safe 0 -i list.txt -c copy end.mp4   # base.mp4 x $repeat"
cmd "ffmpeg -i end.mp4 -c copy -movflags +faststart faststart.mp4; ffmpeg -i end.mp4 -c copy video.mkv"
cmd "$(basename "$VIDEO_PROBE_BIN") FILE"
cmd "$(basename "$VIDEO_PROBE_BIN") --frame 33p FILE"
cmd "ffprobe -v error -count_frames -show_streams -show_format -of json FILE"
cmd "ffprobe -v error -count_packets -show_streams -show_format -of json FILE"
cmd "ffprobe -v error -show_streams -show_format -of json FILE"
cmd "ffmpeg -v error -ss <33% of the duration> -i FILE -frames:v 1 -f null -"

cell() { echo "$(awk -v s="$1" 'BEGIN { printf "%.3f", s }') s, $(awk -v b="$2" 'BEGIN { printf "%.2f", b / 1048576 }') MiB"; }

for name in faststart.mp4 end.mp4 video.mkv; do
  file=$work/$name
  bytes=$(stat -c %s "$file")
  cat "$file" >/dev/null
  log "$name ($(mib $((bytes / 1024))) MiB)"

  median_of "$BENCH_RUNS" "$VIDEO_PROBE_BIN" "$file"
  s_secs=$m_secs s_rchar=$m_bytes
  s_read=$(json 'd["bytes_read"]' <"$work/out")
  s_reqs=$(json 'd["source_requests"]' <"$work/out")
  s_frames=$(json 'd["streams"][0]["frames_count"]' <"$work/out")
  duration=$(json 'd["duration"]' <"$work/out")

  median_of "$BENCH_DECODE_RUNS" ffprobe -v error -count_frames -show_streams -show_format -of json "$file"
  f_secs=$m_secs f_read=$m_bytes
  f_frames=$(json 'd["streams"][0]["nb_read_frames"]' <"$work/out")
  median_of "$BENCH_RUNS" ffprobe -v error -count_packets -show_streams -show_format -of json "$file"
  p_secs=$m_secs p_read=$m_bytes
  median_of "$BENCH_RUNS" ffprobe -v error -show_streams -show_format -of json "$file"
  h_secs=$m_secs h_read=$m_bytes

  [[ $s_frames == "$f_frames" ]] || notes+=("$name: stowage counted $s_frames frames, ffprobe $f_frames")
  row "$name, $(mib $((bytes / 1024))) MiB, $s_frames frames" "$(cell "$s_secs" "$s_read") ($s_reqs reads)" \
    "$(cell "$f_secs" "$f_read")" "$(cell "$p_secs" "$p_read")" "$(cell "$h_secs" "$h_read")" \
    "$(ratio "$p_secs" "$s_secs")x"
  notes+=("$name: the driver's own read(2) bytes (rchar) were $(awk -v b="$s_rchar" 'BEGIN { printf "%.2f", b / 1048576 }') MiB (its binary's libraries are mmapped, not read)")

  # The 33p preview frame.
  median_of "$BENCH_RUNS" "$VIDEO_PROBE_BIN" --frame 33p "$file"
  d_secs=$m_secs d_read=$(json 'd["source_bytes"]' <"$work/out")
  at=$(awk -v d="$duration" 'BEGIN { printf "%.3f", d * 0.33 }')
  median_of "$BENCH_RUNS" ffmpeg -nostdin -v error -ss "$at" -i "$file" -frames:v 1 -f null -
  fd_secs=$m_secs fd_read=$m_bytes
  frame_rows+=("| $name | $(cell "$d_secs" "$d_read") | $(cell "$fd_secs" "$fd_read") | $(ratio "$fd_secs" "$d_secs")x |")
  rm -f "$file"
done

{
  echo "# Stowage video probe benchmark $stamp"
  echo
  echo "- Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)," \
    "$(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)," \
    "load average at start $load_start / at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- Versions: $(basename "$VIDEO_PROBE_BIN") at git $(git -C "$repo" rev-parse --short HEAD)$(
    git -C "$repo" diff --quiet HEAD -- src bench 2>/dev/null || echo " (uncommitted changes)"), $VIDEO_PROBE_BIN," \
    "$(ffprobe -version | head -1 | awk '{ print $1, $2, $3 }')"
  echo "- One ~${BENCH_VIDEO_MB} MiB H.264 stream (720p30, ~20 Mbit/s, GOP 60), no audio; file in the page cache;" \
    "median of $BENCH_RUNS runs ($BENCH_DECODE_RUNS for -count_frames). Bytes: Stowage's = what its reader returned (a remote store's transfer);" \
    "ffprobe's = its read(2) bytes."
  echo
  echo "| File | Stowage probe (all frame times) | ffprobe -count_frames | ffprobe -count_packets | ffprobe -show_streams (header only) | -count_packets / stowage time |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "| Preview frame at 33% | Stowage decode_video_frame | ffmpeg -ss T -frames:v 1 | ratio |"
  echo "|---|---|---|---|"
  printf '%s\n' "${frame_rows[@]}"
  echo
  report_tail
} >"$report"
show_report
