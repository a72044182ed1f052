#!/usr/bin/python3
"""Outside stress run of the facerestore element, driven through GStreamer's Python bindings
(code nobody here wrote), as an application would drive it:

  1. a long run: every frame of a clip through the element, each checked on arrival (count,
     timestamps strictly increasing, none lost);
  2. state cycles mid-stream: PLAYING -> PAUSED -> READY -> PAUSED -> PLAYING, again and again,
     each change awaited with a time limit (a hang fails the run);
  3. flushing seeks while restoring: a seek to a random position every few frames; after each,
     the first frame must be at or after the target and frames must be in order again.

Bounded in count and in time; stops by itself. Prints one line per phase and a summary.

usage: benches/stress.py CLIP.mp4 WEIGHTS [--cycles 20] [--seeks 40] [--long-loops 3]
needs: python3-gst-1.0 (Debian), GST_PLUGIN_PATH with libgstgfpgan.so
"""

import argparse
import random
import sys
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
from gi.repository import Gst, GstApp  # noqa: E402, F401  (GstApp: the appsink methods)

STATE_TIMEOUT = 60 * Gst.SECOND  # a state change that takes longer counts as a hang


class Run:
    def __init__(self, clip, weights, face_models):
        # decodebin's pads come and go with every READY -> PAUSED: linked here on each pad-added,
        # as an application does (gst-launch's one-time delayed link would not relink).
        self.pipeline = Gst.parse_launch(
            f"filesrc location={clip} ! decodebin name=dec "
            "videoconvert name=conv ! video/x-raw,format=RGB ! "
            f"facerestore name=fr weights={weights} face-models={face_models} batch-size=2 ! "
            "appsink name=sink sync=false max-buffers=4 emit-signals=false"
        )
        conv_sink = self.pipeline.get_by_name("conv").get_static_pad("sink")

        def link(_dec, pad):
            if pad.query_caps(None).to_string().startswith("video/") and not conv_sink.is_linked():
                pad.link(conv_sink)

        self.pipeline.get_by_name("dec").connect("pad-added", link)
        self.sink = self.pipeline.get_by_name("sink")
        self.bus = self.pipeline.get_bus()
        self.errors = []

    def set_state(self, state):
        self.pipeline.set_state(state)
        ret, _, _ = self.pipeline.get_state(STATE_TIMEOUT)
        if ret == Gst.StateChangeReturn.FAILURE:
            raise SystemExit(f"state change to {state.value_nick} failed: {self.drain_errors()}")
        if ret == Gst.StateChangeReturn.ASYNC:
            raise SystemExit(f"state change to {state.value_nick} did not finish in 60 s (hang)")

    def drain_errors(self):
        while True:
            msg = self.bus.pop_filtered(Gst.MessageType.ERROR)
            if msg is None:
                return self.errors
            err, dbg = msg.parse_error()
            self.errors.append(f"{err.message} ({dbg})")

    def pull(self, timeout_s=120):
        """The next frame's PTS; None at EOS. A frame that does not come in time is a hang."""
        sample = self.sink.try_pull_sample(timeout_s * Gst.SECOND)
        if sample is None:
            if self.sink.is_eos():
                return None
            raise SystemExit(f"no frame for {timeout_s} s (hang); errors: {self.drain_errors()}")
        return sample.get_buffer().pts

    def pull_in_order(self, count, last, what):
        """Up to `count` more frames, each after `last`; returns the last PTS and how many came."""
        n = 0
        for _ in range(count):
            pts = self.pull()
            if pts is None:
                break
            if pts <= last:
                raise SystemExit(f"{what}: frame at {pts} after {last}: out of order")
            last, n = pts, n + 1
        return last, n

    def duration(self):
        ok, d = self.pipeline.query_duration(Gst.Format.TIME)
        return d if ok else None

    def seek(self, pos):
        flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.ACCURATE
        if not self.pipeline.seek_simple(Gst.Format.TIME, flags, pos):
            raise SystemExit(f"seek to {pos} refused")


def long_run(run, loops):
    """Every frame of the clip, `loops` times (a flushing seek to 0 between loops)."""
    frames, start = 0, time.monotonic()
    per_loop = first_pts = None
    for loop in range(loops):
        if loop:
            run.seek(0)
        last, n = -1, 0
        while (pts := run.pull()) is not None:
            if pts <= last:
                raise SystemExit(f"loop {loop}: frame {n} at {pts} after {last}: out of order")
            first_pts = pts if first_pts is None else first_pts
            last, n = pts, n + 1
        if per_loop is not None and n != per_loop:
            raise SystemExit(f"loop {loop}: {n} frames, the first loop had {per_loop}: frames lost")
        per_loop, frames = n, frames + n
    return frames, per_loop, first_pts, time.monotonic() - start


def state_cycles(run, cycles, rng, first_pts):
    """Frames flow between cycles; READY restarts the file from `first_pts`. appsink (1.22) keeps
    the samples queued before READY and hands them out after the restart (it does the same with
    identity in facerestore's place), so a frame earlier than the one before it is out of order
    unless it is the file's first frame."""
    frames, last, start = 0, -1, time.monotonic()
    for _ in range(cycles):
        for _ in range(rng.randint(1, 6)):
            pts = run.pull()
            if pts is None:
                break
            if pts <= last and pts != first_pts:
                raise SystemExit(f"state cycles: frame at {pts} after {last}: out of order")
            last, frames = pts, frames + 1
        for state in (Gst.State.PAUSED, Gst.State.READY, Gst.State.PAUSED, Gst.State.PLAYING):
            run.set_state(state)
    return frames, time.monotonic() - start


def flushing_seeks(run, seeks, rng):
    duration = run.duration()
    if not duration:
        raise SystemExit("the clip has no duration to seek in")
    frames, start = 0, time.monotonic()
    for _ in range(seeks):
        target = rng.randrange(0, duration * 9 // 10)
        run.seek(target)
        first = run.pull()
        if first is None:
            continue
        # ACCURATE: nothing before the target (one frame's tolerance for rounding).
        if first + 41 * Gst.MSECOND < target:
            raise SystemExit(f"after a seek to {target} the first frame is at {first}")
        frames += 1 + run.pull_in_order(rng.randint(0, 4), first, "after a seek")[1]
    return frames, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("weights")
    ap.add_argument("--face-models", default="weights/face-api/model")
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--seeks", type=int, default=40)
    ap.add_argument("--long-loops", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    Gst.init(None)
    rng = random.Random(args.seed)
    run = Run(args.clip, args.weights, args.face_models)
    run.set_state(Gst.State.PLAYING)
    try:
        phases(run, args, rng)
    finally:
        run.pipeline.set_state(Gst.State.NULL)
    errors = run.drain_errors()
    print(f"errors on the bus: {len(errors)}")
    for e in errors[:5]:
        print(f"  {e}")
    sys.exit(1 if errors else 0)


def phases(run, args, rng):
    frames, per_loop, first_pts, secs = long_run(run, args.long_loops)
    print(f"long run: {frames} frames ({args.long_loops} x {per_loop}), all in order, none lost, {secs:.1f} s")
    run.seek(0)
    frames, secs = state_cycles(run, args.cycles, rng, first_pts)
    print(f"state cycles: {args.cycles} cycles PLAYING-PAUSED-READY-PAUSED-PLAYING, {frames} frames between, {secs:.1f} s")
    frames, secs = flushing_seeks(run, args.seeks, rng)
    print(f"flushing seeks: {args.seeks} seeks, {frames} frames after them, all in order, {secs:.1f} s")


if __name__ == "__main__":
    main()
