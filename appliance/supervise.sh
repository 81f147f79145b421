#!/bin/sh
# The long-lived helpers of `appliance run`, in POSIX sh rather than Python
# because each Python process costs the station ~9 MiB of its 120 MB budget
# (Raspberry Pi Zero 2 W) while these only wait and relay:
#   supervise.sh run SUPERVISORD CONF MARKER
#       `appliance run` execs this after its checks: start supervisord, relay
#       TERM/INT/HUP to it, and exit 3 if the listener left MARKER (supervisord
#       itself exits 0 however it stops), its last line naming each service
#       that stopped the station and why (the service's own words, left in
#       $APPLIANCE_STATE/exit-cause.NAME by appliance/service.py).
#   supervise.sh fatal-listener
#       supervisord event listener (READY, one event, RESULT) for every
#       PROCESS_STATE event: says each service's start, exit and stop in the
#       station's log format (supervisord's own log goes to a file: its lines
#       were a second format, and each appeared twice).  A service that went
#       FATAL is appended to MARKER and supervisord is stopped.  One that
#       cannot start for good (a port someone else holds: retrying cannot help)
#       has done both itself before exiting (appliance/supervise.py), so that
#       supervisord starts it no more; the listener only makes sure.
#   supervise.sh relay NAME PROGRAM...
#       run PROGRAM, rewriting lldpd's own lines ("2026-12-07T06:12:03
#       [INFO/main] text") in the station's format; other lines pass as they
#       are; exits with PROGRAM's status.
# Lines are text ("HH:MM:SS LEVEL   name       message", appliance/logs.py's
# HumanFormatter) or JSON, as $APPLIANCE_LOG_FORMAT says; $APPLIANCE_LOG_LEVEL
# hides lines below it.

level_no() {
    case $1 in
        DEBUG) echo 10 ;; INFO) echo 20 ;; WARNING) echo 30 ;; ERROR) echo 40 ;; *) echo 50 ;;
    esac
}

# say LEVEL NAME MESSAGE: one line on stderr in the station's format.
say() {
    [ "$(level_no "$1")" -lt "$(level_no "${APPLIANCE_LOG_LEVEL:-INFO}")" ] && return 0
    if [ "${APPLIANCE_LOG_FORMAT:-text}" = json ]; then
        ts=$(date +%s.%N 2>/dev/null)
        case $ts in *[!0-9.]* | '') ts=$(date +%s) ;; *.*) ts=${ts%??????} ;; esac
        lower=$(printf '%s' "$1" | tr 'A-Z' 'a-z')
        msg=$(printf '%s' "$3" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\000-\037')
        printf '{"ts": %s, "level": "%s", "service": "%s", "msg": "%s"}\n' "$ts" "$lower" "$2" "$msg" >&2
    else
        printf '%s %-7s %-10s %s\n' "$(date +%H:%M:%S)" "$1" "$2" "$3" >&2
    fi
}

state_dir() { printf '%s' "${APPLIANCE_STATE:-.}"; }

# cause NAME: "KIND<newline>TEXT" a service left when it exited failing, or nothing.
cause_kind() {
    f="$(state_dir)/exit-cause.$1"
    [ -f "$f" ] && sed -n 1p "$f"
}
cause_text() {
    f="$(state_dir)/exit-cause.$1"
    [ -f "$f" ] && sed -n 2p "$f"
}

run() {
    "$1" -n -c "$2" &
    child=$!
    for sig in TERM INT HUP; do
        trap "kill -$sig $child 2>/dev/null" "$sig"
    done
    while :; do
        wait "$child"
        status=$?
        kill -0 "$child" 2>/dev/null || break
    done
    if [ -e "$3" ]; then
        for name in $(sort -u "$3"); do
            text=$(cause_text "$name")
            if [ "$(cause_kind "$name")" = stop ]; then
                say ERROR supervisor "station stopped: $name cannot start: $text"
            elif [ -n "$text" ]; then
                say ERROR supervisor "station stopped: $name kept failing; its last error: $text"
            else
                say ERROR supervisor "station stopped: $name kept failing (its last lines above say why)"
            fi
        done
        exit 3
    fi
    exit "$status"
}

stop_station() {
    echo "$1" >>"$(state_dir)/supervisor-fatal"
    kill -TERM "$PPID"
}

fatal_listener() {
    while :; do
        printf 'READY\n'
        IFS= read -r header || exit 0
        len=0 event=
        for item in $header; do
            case $item in
                len:*) len=${item#len:} ;;
                eventname:*) event=${item#eventname:} ;;
            esac
        done
        case $len in '' | *[!0-9]*) len=0 ;; esac
        payload=$(dd bs=1 count="$len" 2>/dev/null)
        name='?' pid='?' expected=1 tries=
        for item in $payload; do
            case $item in
                processname:*) name=${item#processname:} ;;
                pid:*) pid=${item#pid:} ;;
                expected:*) expected=${item#expected:} ;;
                tries:*) tries=${item#tries:} ;;
            esac
        done
        case $name in fatal) printf 'RESULT 2\nOK'; continue ;; esac
        case $event in
            PROCESS_STATE_RUNNING) say INFO supervisor "$name running (pid $pid)" ;;
            PROCESS_STATE_BACKOFF | PROCESS_STATE_EXITED)
                if [ "$(cause_kind "$name")" = stop ]; then
                    # The service stopped supervisord itself (appliance/supervise.py); only if
                    # that failed does the listener.
                    if ! grep -qx "$name" "$(state_dir)/supervisor-fatal" 2>/dev/null; then
                        stop_station "$name"
                    fi
                elif [ "$event" = PROCESS_STATE_BACKOFF ]; then
                    say WARNING supervisor "$name exited while starting (failed starts: ${tries:-?}); starting it again"
                elif [ "$expected" = 1 ]; then
                    say INFO supervisor "$name exited"
                else
                    say WARNING supervisor "$name (pid $pid) exited unexpectedly; restarting it"
                fi ;;
            PROCESS_STATE_FATAL)
                # A service stopped for its cause goes FATAL as supervisord stops: said already.
                if ! grep -qx "$name" "$(state_dir)/supervisor-fatal" 2>/dev/null; then
                    say ERROR supervisor "$name kept failing: stopping the station"
                    stop_station "$name"
                fi ;;
            PROCESS_STATE_STOPPED) say INFO supervisor "$name stopped" ;;
        esac
        printf 'RESULT 2\nOK'
    done
}

# relay_lines NAME: stdin's lines, lldpd's rewritten in the station's format.
relay_lines() {
    while IFS= read -r line; do
        case $line in
            [0-9][0-9][0-9][0-9]-*T*' ['*/*'] '*)
                rest=${line#* \[}
                level=${rest%%/*}
                case $level in
                    # Its INFO lines are start-up chatter (protocols enabled, libevent): the
                    # launcher's own line says lldpd started.
                    DBG | INFO) level=DEBUG ;; WARN) level=WARNING ;; *) level=ERROR ;;
                esac
                say "$level" "$1" "${rest#*\] }" 2>&1 ;;
            *) printf '%s\n' "$line" ;;
        esac
    done
}

# One extra process: a reader behind a FIFO; this shell then becomes PROGRAM (exec), so
# supervisord sees PROGRAM's own pid and exit status.  (A pipeline kept three shells
# waiting, on a station counted in single MiB.)
relay() {
    name=$1
    shift
    fifo="${APPLIANCE_STATE:-${TMPDIR:-/tmp}}/relay-$name.$$"
    rm -f "$fifo"
    mkfifo -m 600 "$fifo" || exec "$@"
    { rm -f "$fifo"; relay_lines "$name"; } <"$fifo" &
    exec "$@" >"$fifo" 2>&1
}

case $1 in
    run) shift; run "$@" ;;
    fatal-listener) fatal_listener ;;
    relay) shift; relay "$@" ;;
    *) echo "usage: supervise.sh run SUPERVISORD CONF MARKER | fatal-listener | relay NAME PROGRAM..." >&2; exit 2 ;;
esac
