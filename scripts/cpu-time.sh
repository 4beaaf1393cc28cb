# Sourced by the load benchmarks: a process's own CPU time, read from /proc, which other
# processes on this shared machine move less than they move throughput.

# cpu_ticks PID: its user + system clock ticks so far.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# cpu_cores PID SECS: the cores PID uses on average over the next SECS seconds.
cpu_cores() {
  local t0 s0 t1 s1
  t0=$(cpu_ticks "$1") s0=$(date +%s.%N)
  sleep "$2"
  t1=$(cpu_ticks "$1") s1=$(date +%s.%N)
  python3 -c "print(($t1 - $t0) / $(getconf CLK_TCK) / ($s1 - $s0))"
}

# cpu_per_request NAME IDLE_CORES TICKS0 TICKS1 START END REQUESTS: NAME's cores between START
# and END (ticks TICKS0 to TICKS1), and its CPU per request served beyond IDLE_CORES.
cpu_per_request() {
  python3 -c "
idle, secs = $2, $6 - $5
busy = ($4 - $3) / $(getconf CLK_TCK) / secs
print(f'$1 CPU: {idle:.3f} cores with ratings only, {busy:.3f} under requests; '
      f'$1 CPU per request: {(busy - idle) * secs / $7 * 1e6:.1f} us')"
}
