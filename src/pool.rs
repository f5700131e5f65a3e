// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! A pool of worker threads, each with its own state (its own model session), fed through a
//! crossbeam channel. Every submitted job gets a [`Ticket`] that its worker fills; callers keep
//! tickets in submission order, which is how output stays in input order. Jobs come in lanes
//! (one per stream when several streams share the pool) and workers take them round-robin
//! across the lanes, each lane in its own order, so a stream with a long backlog cannot make the
//! others wait behind it. No GStreamer here.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use crossbeam_channel::{unbounded, Sender};

/// The future result of one job.
pub struct Ticket<O> {
    inner: Arc<(Mutex<Option<Result<O>>>, Condvar)>,
    cancelled: Arc<AtomicBool>,
}

impl<O> Clone for Ticket<O> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            cancelled: self.cancelled.clone(),
        }
    }
}

impl<O> Ticket<O> {
    pub fn new() -> Self {
        Self {
            inner: Arc::new((Mutex::new(None), Condvar::new())),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Asks the pool not to run this job if no worker has started it yet.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    pub fn fill(&self, value: Result<O>) {
        let (slot, ready) = &*self.inner;
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        ready.notify_all();
    }

    /// Waits at most `timeout` for the result; `None` if it is not there yet. Takes the result.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<O>> {
        let (slot, ready) = &*self.inner;
        let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let (mut guard, _) = ready
            .wait_timeout_while(guard, timeout, |v| v.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.take()
    }
}

impl<O: Clone> Ticket<O> {
    /// Like [`Self::wait_timeout`], but leaves the result for other readers.
    pub fn peek_timeout(&self, timeout: Duration) -> Option<Result<O>> {
        let (slot, ready) = &*self.inner;
        let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = ready
            .wait_timeout_while(guard, timeout, |v| v.is_none())
            .unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(|r| match r {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(anyhow!("{e:#}")),
        })
    }
}

impl<O> Default for Ticket<O> {
    fn default() -> Self {
        Self::new()
    }
}

type Work<I, O> = (I, Ticket<O>);

/// The jobs not yet taken, by lane; lanes with jobs in round-robin order.
struct Lanes<I, O>(VecDeque<(u64, VecDeque<Work<I, O>>)>);

impl<I, O> Lanes<I, O> {
    fn push(&mut self, lane: u64, work: Work<I, O>) {
        match self.0.iter_mut().find(|(id, _)| *id == lane) {
            Some((_, jobs)) => jobs.push_back(work),
            None => self.0.push_back((lane, VecDeque::from([work]))),
        }
    }

    /// The next lane's oldest job; that lane goes to the back of the line.
    fn take(&mut self) -> Option<Work<I, O>> {
        let (lane, mut jobs) = self.0.pop_front()?;
        let work = jobs.pop_front();
        if !jobs.is_empty() {
            self.0.push_back((lane, jobs));
        }
        work
    }
}

type SharedLanes<I, O> = Arc<Mutex<Lanes<I, O>>>;

pub struct Pool<I, O> {
    /// One message per job put in `lanes`: workers block on the channel, then take the job the
    /// round-robin order gives.
    tx: Option<Sender<()>>,
    lanes: SharedLanes<I, O>,
    threads: Vec<JoinHandle<()>>,
    batch: usize,
    counters: Arc<Counters>,
}

/// What the workers have run so far.
#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    jobs: AtomicU64,
}

impl<I: Send + 'static, O: Send + 'static> Pool<I, O> {
    /// Starts one thread per worker function, each taking one job at a time. A worker that
    /// panics fills its ticket with an error and keeps serving.
    pub fn new<W>(name: &str, workers: Vec<W>) -> Result<Self>
    where
        W: FnMut(I) -> Result<O> + Send + 'static,
    {
        let single = workers
            .into_iter()
            .map(|mut work| move |jobs: Vec<I>| jobs.into_iter().map(&mut work).collect())
            .collect();
        Self::batched(name, single, 1, Duration::ZERO)
    }

    /// Starts one thread per worker function, each taking up to `batch` jobs at a time: after
    /// the first job it waits at most `timeout` for more. A worker returns one result per job,
    /// in order; if it panics, every job of that batch gets an error and the worker goes on.
    pub fn batched<W>(name: &str, workers: Vec<W>, batch: usize, timeout: Duration) -> Result<Self>
    where
        W: FnMut(Vec<I>) -> Vec<Result<O>> + Send + 'static,
    {
        let (tx, rx) = unbounded::<()>();
        let lanes: SharedLanes<I, O> = Arc::new(Mutex::new(Lanes(VecDeque::new())));
        let batch = batch.max(1);
        let counters = Arc::new(Counters::default());
        let threads = workers
            .into_iter()
            .enumerate()
            .map(|(i, mut work)| {
                let rx = rx.clone();
                let lanes = lanes.clone();
                let counters = counters.clone();
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || {
                        let take = || lanes.lock().unwrap_or_else(|e| e.into_inner()).take();
                        while let Ok(()) = rx.recv() {
                            let mut jobs: Vec<Work<I, O>> = take().into_iter().collect();
                            let deadline = Instant::now() + timeout;
                            while jobs.len() < batch {
                                match rx.recv_deadline(deadline) {
                                    Ok(()) => jobs.extend(take()),
                                    Err(_) => break,
                                }
                            }
                            let (inputs, tickets): (Vec<I>, Vec<Ticket<O>>) = jobs
                                .into_iter()
                                .filter(|(_, ticket)| {
                                    if ticket.is_cancelled() {
                                        ticket.fill(Err(anyhow!("cancelled")));
                                    }
                                    !ticket.is_cancelled()
                                })
                                .unzip();
                            if inputs.is_empty() {
                                continue;
                            }
                            let n = inputs.len();
                            counters.batches.fetch_add(1, Ordering::Relaxed);
                            counters.jobs.fetch_add(n as u64, Ordering::Relaxed);
                            match catch_unwind(AssertUnwindSafe(|| work(inputs))) {
                                Ok(outs) if outs.len() == n => {
                                    for (ticket, out) in tickets.iter().zip(outs) {
                                        ticket.fill(out);
                                    }
                                }
                                Ok(_) => tickets
                                    .iter()
                                    .for_each(|t| t.fill(Err(anyhow!("worker lost a result")))),
                                Err(_) => tickets
                                    .iter()
                                    .for_each(|t| t.fill(Err(anyhow!("worker thread panicked")))),
                            }
                        }
                    })
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| anyhow!("cannot start worker threads: {e}"))?;
        Ok(Self {
            tx: Some(tx),
            lanes,
            threads,
            batch,
            counters,
        })
    }

    pub fn workers(&self) -> usize {
        self.threads.len()
    }

    /// The most jobs a worker takes at once.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Jobs submitted and not yet taken by a worker (cancelled ones included).
    pub fn queued(&self) -> usize {
        self.tx.as_ref().map_or(0, |tx| tx.len())
    }

    /// Jobs the workers have run (cancelled ones not counted).
    pub fn jobs_run(&self) -> u64 {
        self.counters.jobs.load(Ordering::Relaxed)
    }

    /// How full the batches run so far were, 0 to 1 (0 before the first).
    pub fn batch_fill(&self) -> f64 {
        let batches = self.counters.batches.load(Ordering::Relaxed);
        if batches == 0 {
            return 0.0;
        }
        self.jobs_run() as f64 / (batches as f64 * self.batch as f64)
    }

    /// Queues a job; some worker picks it up.
    pub fn submit(&self, input: I) -> Ticket<O> {
        self.submit_in(0, input)
    }

    /// Queues a job in `lane`: the workers take the lanes' jobs in turn.
    pub fn submit_in(&self, lane: u64, input: I) -> Ticket<O> {
        let ticket = Ticket::new();
        let Some(tx) = &self.tx else {
            ticket.fill(Err(anyhow!("the worker pool is shut down")));
            return ticket;
        };
        self.lanes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(lane, (input, ticket.clone()));
        // The workers outlive the sender: the message always has a receiver.
        let _ = tx.send(());
        ticket
    }
}

impl<I, O> Drop for Pool<I, O> {
    fn drop(&mut self) {
        // Closing the channel ends every worker's loop once the queued jobs are done.
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_per_ticket_whatever_the_finishing_order() {
        let workers = (0..3)
            .map(|_| {
                |x: u64| {
                    std::thread::sleep(Duration::from_millis((x * 7919) % 13));
                    Ok(x * 2)
                }
            })
            .collect();
        let pool = Pool::new("test", workers).unwrap();
        let tickets: Vec<_> = (0..50).map(|i| pool.submit(i)).collect();
        for (i, t) in tickets.iter().enumerate() {
            assert_eq!(
                t.wait_timeout(Duration::from_secs(5)).unwrap().unwrap(),
                i as u64 * 2
            );
        }
    }

    #[test]
    fn batches_fill_up_to_the_limit_and_keep_order() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        let worker = move |jobs: Vec<u32>| {
            seen.lock().unwrap().push(jobs.len());
            jobs.into_iter().map(|x| Ok(x + 1)).collect()
        };
        let pool = Pool::batched("test", vec![worker], 4, Duration::from_millis(200)).unwrap();
        let tickets: Vec<_> = (0..10).map(|i| pool.submit(i)).collect();
        for (i, t) in tickets.iter().enumerate() {
            assert_eq!(
                t.wait_timeout(Duration::from_secs(5)).unwrap().unwrap(),
                i as u32 + 1
            );
        }
        // 10 jobs queued at once: batches of 4, 4 and a partial 2 after the timeout.
        assert_eq!(*sizes.lock().unwrap(), vec![4, 4, 2]);
        assert_eq!(pool.jobs_run(), 10);
        assert!((pool.batch_fill() - 10.0 / 12.0).abs() < 1e-9);
        assert_eq!(pool.queued(), 0);
    }

    #[test]
    fn lanes_are_served_in_turn_each_in_its_own_order() {
        let order = Arc::new(Mutex::new(Vec::new()));
        let log = order.clone();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let open = gate.clone();
        let pool = Pool::new(
            "test",
            vec![move |x: (u64, u32)| {
                if x.0 == 0 {
                    // The gate job holds the worker until every other job is queued.
                    let (lock, cv) = &*open;
                    let _g = cv
                        .wait_while(lock.lock().unwrap(), |opened| !*opened)
                        .unwrap();
                } else {
                    log.lock().unwrap().push(x);
                }
                Ok(())
            }],
        )
        .unwrap();
        let gate_job = pool.submit_in(0, (0, 0));
        // Lane 1 queues a backlog of 4 before lanes 2 and 3 queue 2 each.
        let mut tickets: Vec<_> = (0..4).map(|i| pool.submit_in(1, (1, i))).collect();
        tickets.extend((0..2).map(|i| pool.submit_in(2, (2, i))));
        tickets.extend((0..2).map(|i| pool.submit_in(3, (3, i))));
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        gate_job
            .wait_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap();
        for t in &tickets {
            t.wait_timeout(Duration::from_secs(5)).unwrap().unwrap();
        }
        assert_eq!(
            *order.lock().unwrap(),
            vec![
                (1, 0),
                (2, 0),
                (3, 0),
                (1, 1),
                (2, 1),
                (3, 1),
                (1, 2),
                (1, 3)
            ]
        );
    }

    #[test]
    fn cancelled_jobs_do_not_run() {
        let ran = Arc::new(Mutex::new(Vec::new()));
        let log = ran.clone();
        let pool = Pool::new(
            "test",
            vec![move |x: u32| {
                std::thread::sleep(Duration::from_millis(20));
                log.lock().unwrap().push(x);
                Ok(x)
            }],
        )
        .unwrap();
        let tickets: Vec<_> = (0..5).map(|i| pool.submit(i)).collect();
        for t in &tickets[2..4] {
            t.cancel();
        }
        for t in &tickets {
            t.wait_timeout(Duration::from_secs(5)).unwrap().ok();
        }
        assert_eq!(*ran.lock().unwrap(), vec![0, 1, 4]);
    }

    #[test]
    fn a_panicking_job_becomes_an_error_and_the_worker_lives_on() {
        let pool = Pool::new(
            "test",
            vec![|x: u32| if x == 1 { panic!("boom") } else { Ok(x) }],
        )
        .unwrap();
        let a = pool.submit(1);
        let b = pool.submit(2);
        assert!(a.wait_timeout(Duration::from_secs(5)).unwrap().is_err());
        assert_eq!(b.wait_timeout(Duration::from_secs(5)).unwrap().unwrap(), 2);
    }
}
