# Sourced by the scripts: what they print of TensorFlow's start-up lines, and
# progress for long steps.
#
# TensorFlow writes a few lines to stderr when it loads, before its logging
# starts, so no environment variable silences them (TF_CPP_MIN_LOG_LEVEL only
# acts later). They are harmless, and tf_quiet leaves them out:
# absl's "All log messages before absl::InitializeLog()", oneDNN's notice,
# the CPU-feature notice, "Could not find cuda drivers" (cudart_stub), and,
# on a machine without a GPU (nvidia-smi lists none), the error-level
# "failed call to cuInit" of TensorFlow's CUDA platform. Everything else
# TensorFlow prints passes through.
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
TF_NOISE='All log messages before absl::InitializeLog|\] oneDNN custom operations are on|cpu_feature_guard\.cc|^To enable the following instructions|cudart_stub\.cc:[0-9]+\] Could not find cuda drivers'
if ! nvidia-smi -L 2> /dev/null | grep -q '^GPU'; then
  TF_NOISE="$TF_NOISE|cuda_platform\\.cc:[0-9]+\\] failed call to cuInit"
fi

# tf_quiet CMD...: runs CMD with those stderr lines left out; CMD's status.
tf_quiet() {
  "$@" 2> >(grep -Ev --line-buffered "$TF_NOISE" >&2)
}

# cmake_progress LOG: passes CMake's "[ 42%] Building ..." lines of a build's
# output through, the whole output to LOG.
cmake_progress() {
  tee "$1" | awk '/^ *\[ *[0-9]+%\] (Building|Linking)/ { sub(/^ */, "  "); print; fflush() }'
}

# heartbeat LABEL CMD...: runs CMD, and while it runs prints "  (LABEL: N s)"
# every 30 s, so that a long step with no output of its own is not silent;
# CMD's status.
heartbeat() {
  local label=$1 t0=$SECONDS ticker status
  shift
  (while sleep 30; do echo "  ($label: $((SECONDS - t0)) s)"; done) &
  ticker=$!
  "$@" && status=0 || status=$? # (no exit under set -e before the ticker is stopped)
  kill "$ticker" 2> /dev/null
  wait "$ticker" 2> /dev/null || true
  return $status
}
