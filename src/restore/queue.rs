//! Which faces go into the next network pass when several streams share one network: faces are
//! taken one per stream in turn (so a stream with many faces cannot starve one with few), the
//! turn going on from pass to pass where it stopped (so no stream is always last), and faces of frames
//! a stream has cancelled are dropped before they cost a pass. Pure bookkeeping: running the
//! network is `shared`'s; this file decides and hands results back.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::error::{Error, Result};
use crate::frame::Rgb;

/// One aligned face waiting for the network.
#[derive(Debug, Clone)]
pub struct QueuedFace {
    pub crop: Rgb,
    /// Its noise seed (a stream uses the track id, so a face keeps its noise whatever batch it
    /// lands in); `None`: the checkpoint's stored noise maps.
    pub seed: Option<u64>,
    /// Its frame number, checked against the stream's cancel threshold.
    pub seq: u64,
}

/// What a request gets back: one entry per face, `None` for the faces of cancelled frames.
pub type Reply = Result<Vec<Option<Rgb>>>;

/// Some faces of one stream, answered together once all of them are restored (or dropped).
pub struct Request {
    pub stream: u64,
    pub faces: Vec<QueuedFace>,
    /// The most faces a pass holding these may have (the stream's batch size).
    pub max_batch: usize,
    /// Until when a pass may wait for other faces to fill up before running with these.
    pub deadline: Instant,
    /// Faces of frames numbered below this are dropped (`None`: never).
    pub cancel_below: Option<Arc<AtomicU64>>,
    pub reply: Sender<Reply>,
}

impl Request {
    /// Whether face `face` belongs to a frame cancelled since it was sent.
    pub fn cancelled(&self, face: usize) -> bool {
        let threshold = self.cancel_below.as_ref().map_or(0, |c| c.load(Ordering::SeqCst));
        self.faces[face].seq < threshold
    }
}

struct Waiting {
    request: Request,
    out: Vec<Option<Rgb>>,
    /// Faces before this one are restored or dropped.
    next: usize,
}

impl Waiting {
    fn left(&self) -> usize {
        self.request.faces.len() - self.next
    }
}

/// One face of a pass: its stream and its place in that stream's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub stream: u64,
    /// Index of the request among the stream's waiting ones, and of the face in it.
    request: usize,
    face: usize,
}

/// The requests waiting, by stream.
#[derive(Default)]
pub struct Scheduler {
    streams: BTreeMap<u64, VecDeque<Waiting>>,
    /// The stream whose face was the last one picked.
    last_served: Option<u64>,
}

impl Scheduler {
    pub fn push(&mut self, request: Request) {
        let out = vec![None; request.faces.len()];
        let stream = request.stream;
        let waiting = Waiting { request, out, next: 0 };
        if waiting.left() == 0 {
            let _ = waiting.request.reply.send(Ok(Vec::new()));
            return;
        }
        self.streams.entry(stream).or_default().push_back(waiting);
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Faces not yet restored (cancelled ones included until a pass drops them).
    pub fn faces_waiting(&self) -> usize {
        self.streams.values().flatten().map(Waiting::left).sum()
    }

    /// The next pass's size: the largest batch size among the requests waiting.
    pub fn batch_size(&self) -> usize {
        self.streams.values().flatten().map(|w| w.request.max_batch.max(1)).max().unwrap_or(1)
    }

    /// The earliest deadline among the requests waiting.
    pub fn deadline(&self) -> Option<Instant> {
        self.streams.values().flatten().map(|w| w.request.deadline).min()
    }

    /// Drops the cancelled faces, answers the requests that are then complete, and picks the
    /// faces of the next pass: one per stream in turn, from its oldest request with faces left,
    /// the turn going on from the stream after the last one served.
    pub fn next_pass(&mut self) -> Vec<Pick> {
        self.drop_cancelled();
        let size = self.batch_size();
        let ids: Vec<u64> = self.streams.keys().copied().collect();
        let start = self.last_served.map_or(0, |last| ids.iter().position(|&s| s > last).unwrap_or(0));
        let order: Vec<u64> = ids[start..].iter().chain(&ids[..start]).copied().collect();
        // Faces taken so far from each stream's queue: (request, next face).
        let mut cursor: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
        let mut picks = Vec::new();
        while picks.len() < size {
            let before = picks.len();
            for &stream in &order {
                if picks.len() == size {
                    break;
                }
                let queue = &self.streams[&stream];
                let (mut r, mut f) = *cursor.entry(stream).or_insert((0, queue[0].next));
                while r < queue.len() && f >= queue[r].request.faces.len() {
                    r += 1;
                    f = queue.get(r).map_or(0, |w| w.next);
                }
                if r < queue.len() {
                    picks.push(Pick { stream, request: r, face: f });
                    cursor.insert(stream, (r, f + 1));
                }
            }
            if picks.len() == before {
                break;
            }
        }
        self.last_served = picks.last().map(|p| p.stream).or(self.last_served);
        picks
    }

    /// The crops and seeds of `picks`, in order.
    pub fn inputs(&self, picks: &[Pick]) -> (Vec<Rgb>, Vec<Option<u64>>) {
        picks
            .iter()
            .map(|p| {
                let face = &self.streams[&p.stream][p.request].request.faces[p.face];
                (face.crop.clone(), face.seed)
            })
            .unzip()
    }

    /// Hands a pass's results to its requests (or its error to each request that had a face
    /// in it, which is then answered and forgotten) and answers the requests now complete.
    pub fn finish_pass(&mut self, picks: &[Pick], restored: Result<Vec<Rgb>>) {
        match restored {
            Ok(faces) => {
                for (p, face) in picks.iter().zip(faces) {
                    let w = self.streams.get_mut(&p.stream).and_then(|q| q.get_mut(p.request)).expect("picked");
                    w.out[p.face] = Some(face);
                    w.next = w.next.max(p.face + 1);
                }
            }
            Err(e) => {
                let e = Arc::new(e);
                let mut failed: Vec<(u64, usize)> = picks.iter().map(|p| (p.stream, p.request)).collect();
                // Highest index first, so that removing one leaves the others' places.
                failed.sort_unstable_by(|a, b| b.cmp(a));
                failed.dedup();
                for (stream, request) in failed {
                    let queue = self.streams.get_mut(&stream).expect("picked");
                    if let Some(w) = queue.remove(request) {
                        let _ = w.request.reply.send(Err(Error::Shared(e.clone())));
                    }
                }
            }
        }
        self.answer_complete();
    }

    fn drop_cancelled(&mut self) {
        for w in self.streams.values_mut().flatten() {
            while w.left() > 0 && w.request.cancelled(w.next) {
                w.next += 1;
            }
        }
        self.answer_complete();
    }

    /// Requests are restored in order within a stream, so the complete ones are at the front.
    fn answer_complete(&mut self) {
        for queue in self.streams.values_mut() {
            while queue.front().is_some_and(|w| w.left() == 0) {
                let w = queue.pop_front().expect("front exists");
                let _ = w.request.reply.send(Ok(w.out));
            }
        }
        self.streams.retain(|_, q| !q.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::{Receiver, unbounded};

    fn face(seed: u64, seq: u64) -> QueuedFace {
        QueuedFace { crop: Rgb { w: 1, h: 1, data: vec![seed as f32; 3] }, seed: Some(seed), seq }
    }

    fn request(
        stream: u64,
        seeds: &[u64],
        max_batch: usize,
        cancel: Option<Arc<AtomicU64>>,
    ) -> (Request, Receiver<Reply>) {
        let (reply, rx) = unbounded();
        let faces = seeds.iter().map(|&s| face(s, s)).collect();
        (Request { stream, faces, max_batch, deadline: Instant::now(), cancel_below: cancel, reply }, rx)
    }

    /// Runs passes until nothing waits, "restoring" a face as itself; the seeds of each pass.
    fn run(s: &mut Scheduler) -> Vec<Vec<u64>> {
        let mut passes = Vec::new();
        while !s.is_empty() {
            let picks = s.next_pass();
            let (crops, seeds) = s.inputs(&picks);
            if !picks.is_empty() {
                passes.push(seeds.into_iter().flatten().collect());
            }
            s.finish_pass(&picks, Ok(crops));
        }
        passes
    }

    #[test]
    fn a_stream_with_many_faces_does_not_starve_one_with_few() {
        let mut s = Scheduler::default();
        let (a, a_rx) = request(1, &[10, 11, 12, 13, 14, 15, 16, 17], 4, None);
        let (b, b_rx) = request(2, &[20], 4, None);
        s.push(a);
        s.push(b);
        let passes = run(&mut s);
        assert_eq!(passes[0], vec![10, 20, 11, 12], "the one-face stream rides in the first pass");
        assert_eq!(passes[1..], [vec![13, 14, 15, 16], vec![17]]);
        let seeds = |rx: &Receiver<Reply>| -> Vec<f32> {
            rx.try_recv().unwrap().unwrap().into_iter().map(|f| f.unwrap().data[0]).collect()
        };
        assert_eq!(seeds(&a_rx), [10., 11., 12., 13., 14., 15., 16., 17.], "each face back in its place");
        assert_eq!(seeds(&b_rx), [20.]);
    }

    #[test]
    fn the_turn_goes_on_across_passes_so_that_no_stream_is_always_left_out() {
        // Three streams, passes of two: the turn goes on across passes, so every stream is in
        // one of any two passes in a row and gets its share.
        let mut s = Scheduler::default();
        let rxs: Vec<_> = (1..=3)
            .map(|k| {
                let (r, rx) = request(k, &[k * 10, k * 10 + 1, k * 10 + 2], 2, None);
                s.push(r);
                rx
            })
            .collect();
        let passes = run(&mut s);
        assert_eq!(passes, [vec![10, 20], vec![30, 11], vec![21, 31], vec![12, 22], vec![32]]);
        assert!(rxs.iter().all(|rx| rx.try_recv().unwrap().is_ok()));
    }

    #[test]
    fn cancelled_faces_are_dropped_before_they_cost_a_pass() {
        let mut s = Scheduler::default();
        let cancel = Arc::new(AtomicU64::new(0));
        let (a, a_rx) = request(1, &[1, 2, 3], 1, Some(cancel.clone()));
        s.push(a);
        assert_eq!(run_one(&mut s), vec![1]);
        cancel.store(3, Ordering::SeqCst); // frames 1 and 2 cancelled
        assert_eq!(run_one(&mut s), vec![3]);
        let out = a_rx.try_recv().unwrap().unwrap();
        assert_eq!(out.iter().map(Option::is_some).collect::<Vec<_>>(), [true, false, true]);
        assert!(s.is_empty());
    }

    fn run_one(s: &mut Scheduler) -> Vec<u64> {
        let picks = s.next_pass();
        let (crops, seeds) = s.inputs(&picks);
        s.finish_pass(&picks, Ok(crops));
        seeds.into_iter().flatten().collect()
    }

    #[test]
    fn a_failed_pass_fails_only_the_requests_in_it() {
        let mut s = Scheduler::default();
        let (a, a_rx) = request(1, &[1, 2], 1, None);
        let (b, b_rx) = request(2, &[3], 1, None);
        s.push(a);
        s.push(b);
        let picks = s.next_pass();
        assert_eq!(picks.len(), 1);
        s.finish_pass(&picks, Err(Error::Input("broken".into())));
        let e = a_rx.try_recv().unwrap().unwrap_err();
        assert!(e.one_line().contains("broken"), "{e}");
        assert_eq!(run(&mut s), [vec![3]]);
        assert!(b_rx.try_recv().unwrap().is_ok());
    }

    #[test]
    fn the_pass_size_is_the_largest_batch_waiting() {
        let mut s = Scheduler::default();
        s.push(request(1, &[1, 2, 3], 1, None).0);
        s.push(request(2, &[4], 3, None).0);
        assert_eq!(s.batch_size(), 3);
        assert_eq!(s.faces_waiting(), 4);
        assert_eq!(run_one(&mut s), vec![1, 4, 2]);
        assert_eq!(s.batch_size(), 1);
    }
}
