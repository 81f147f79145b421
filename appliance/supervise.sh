#!/bin/sh
# The two long-lived helpers of `appliance run`, in POSIX sh rather than Python
# because each Python process costs the station ~9 MiB of its 120 MB budget
# (Raspberry Pi Zero 2 W) while these only wait and relay:
#   supervise.sh run SUPERVISORD CONF MARKER
#       `appliance run` execs this after its checks: start supervisord, relay
#       TERM/INT/HUP to it, and exit 3 naming the service if the fatal listener
#       left MARKER (supervisord itself exits 0 however it stops).
#   supervise.sh fatal-listener
#       supervisord event listener (READY, one event, RESULT): on
#       PROCESS_STATE_FATAL append the process name to
#       $APPLIANCE_STATE/supervisor-fatal and stop supervisord (our parent).

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
        names=$(tr '\n' ' ' <"$3" | sed 's/ *$//; s/ /, /g')
        echo "appliance: service ${names:-?} kept failing (FATAL); station stopped" >&2
        exit 3
    fi
    exit "$status"
}

fatal_listener() {
    marker="${APPLIANCE_STATE:-.}/supervisor-fatal"
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
        if [ "$event" = PROCESS_STATE_FATAL ]; then
            name='?'
            for item in $payload; do
                case $item in processname:*) name=${item#processname:} ;; esac
            done
            echo "$name" >>"$marker"
            echo "fatal-listener: $name entered FATAL; stopping supervisord" >&2
            kill -TERM "$PPID"
        fi
        printf 'RESULT 2\nOK'
    done
}

case $1 in
    run) shift; run "$@" ;;
    fatal-listener) fatal_listener ;;
    *) echo "usage: supervise.sh run SUPERVISORD CONF MARKER | fatal-listener" >&2; exit 2 ;;
esac
