#!/usr/bin/env bash
# The JACK app (DPF's standalone of the same plugin) under jackd's dummy driver, headless: its MIDI ports exist, notes
# come out while JACK's transport rolls (jack_midi_dump hears them), and every note is off once it stops.
# Usage: check_jack.sh APP MODEL.onnx     (Debian's jackd2 provides jackd, jack_lsp, jack_connect, jack_midi_dump, jack_transport)
set -u
APP=$1; MODEL=$2
export JACK_DEFAULT_SERVER=nomad_muse_test   # one name: jackd's shared-memory registry holds few servers, and a name a run
                                             # leaves behind is reused by the next (ctest runs this test alone: RESOURCE_LOCK jack)
tmp=$(mktemp -d)
pids=()
cleanup() {                                  # the clients first, then the server, each waited for: jackd then frees its shared memory
    for ((k = ${#pids[@]} - 1; k >= 0; k--)); do kill "${pids[k]}" 2>/dev/null; wait "${pids[k]}" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
failed=0
check() { if [ "$1" = 0 ]; then echo "ok   $2"; else echo "FAIL $2"; failed=$((failed + 1)); fi; }

jackd -n "$JACK_DEFAULT_SERVER" -r -d dummy -r 48000 -p 512 > "$tmp/jackd.log" 2>&1 & pids+=($!)
jack_wait -w -t 10 > /dev/null 2>&1; check $? "jackd runs with the dummy driver (48 kHz, 512 frames)"
MUSE_MODEL=$MODEL "$APP" > "$tmp/app.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do jack_lsp 2>/dev/null | grep -q "Nomad Muse:midi-out" && break; sleep 0.1; done
ports=$(jack_lsp -t 2>/dev/null)
echo "$ports" | grep -A1 "^Nomad Muse:midi-out" | grep -q "8 bit raw midi"; check $? "the app's MIDI output port: Nomad Muse:midi-out"
echo "$ports" | grep -A1 "^Nomad Muse:events-in" | grep -q "8 bit raw midi"; check $? "its MIDI input port: Nomad Muse:events-in"
jack_midi_dump > "$tmp/dump.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do jack_lsp 2>/dev/null | grep -q "midi-monitor:input" && break; sleep 0.1; done
jack_connect "Nomad Muse:midi-out" midi-monitor:input; check $? "connected to jack_midi_dump"
echo play | jack_transport > /dev/null 2>&1
sleep 4
echo stop | jack_transport > /dev/null 2>&1
sleep 1
ons=$(grep -c "note on" "$tmp/dump.log"); offs=$(grep -c "note off" "$tmp/dump.log")
[ "$ons" -gt 10 ]; check $? "notes come out while the transport rolls: $ons note-ons in 4 s"
[ "$ons" = "$offs" ]; check $? "every note is off after the transport stops ($ons on, $offs off)"
before=$(wc -l < "$tmp/dump.log"); sleep 1; after=$(wc -l < "$tmp/dump.log")
[ "$before" = "$after" ]; check $? "silence while stopped"
kill -0 "${pids[1]}" 2>/dev/null; check $? "the app is still running"
if [ "$failed" -gt 0 ]; then echo "--- app:"; cat "$tmp/app.log"; echo "--- jackd:"; tail -5 "$tmp/jackd.log"; echo "$failed failed"; exit 1; fi
echo "all passed"
