// Copyright (C) 2026 beitseg developers
// SPDX-License-Identifier: MIT OR Apache-2.0

//! The workers an element hands its frames to: its own, or a pool shared by name (`pool`
//! property) with every other beitseg of the process that names it. A shared pool's workers
//! take their batches from all of its elements' frames, one element's frame after another's
//! (round-robin), so under overload every stream gets its turn however long another's backlog
//! is; each element still pushes its own results.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use anyhow::{bail, Result};

use super::worker::{self, Job, Rendered};
use crate::engine::Segmenter;
use crate::model::Model;
use crate::pool::{Pool, Ticket};

/// A worker pool and the model its workers run.
pub(super) struct WorkerPool {
    name: Option<String>,
    model: Arc<Model>,
    pool: Pool<Job, Rendered>,
    /// Elements using the pool now.
    streams: AtomicUsize,
}

/// The pools with a name, while some element uses them.
static NAMED: LazyLock<Mutex<HashMap<String, Weak<WorkerPool>>>> = LazyLock::new(Default::default);

/// What an element asks of its pool.
pub(super) struct PoolRequest<'a> {
    /// `None`: a pool of its own.
    pub(super) name: Option<&'a str>,
    pub(super) model: Arc<Model>,
    pub(super) workers: usize,
    /// Most frames a worker takes at once, and the batch a run is padded to.
    pub(super) batch: usize,
    pub(super) pad_to: Option<usize>,
    pub(super) timeout: Duration,
}

/// A pool-wide snapshot for the `stats` property.
pub(super) struct PoolStats {
    pub(super) name: String,
    pub(super) streams: usize,
    pub(super) workers: usize,
    /// Frames submitted and not yet taken by a worker, from every stream.
    pub(super) queued: usize,
    pub(super) batch_fill: f64,
    pub(super) frames: u64,
    /// Requests to an inference server tried again.
    pub(super) server_retries: u64,
}

/// An element's place in a pool, for as long as it runs: the pool and the element's own lane in
/// it (workers take the lanes' frames in turn). Dropping it leaves the pool (and stops the
/// workers when it was the last one in).
pub(super) struct Member(Arc<WorkerPool>, u64);

/// Lane numbers, one per element start.
static LANES: AtomicU64 = AtomicU64::new(1);

impl Member {
    /// The element's pool: a new one, or the running pool of that name. Joining a running pool
    /// that runs another model (or the same model with other settings) is an error; its
    /// workers, batch size and timeout are the first element's, and the returned note says so
    /// when the request asked for others.
    pub(super) fn join(request: PoolRequest<'_>) -> Result<(Self, Option<String>)> {
        let Some(name) = request.name else {
            return Ok((Member::enter(Arc::new(WorkerPool::start(&request)?)), None));
        };
        let mut named = NAMED.lock().unwrap_or_else(|p| p.into_inner());
        named.retain(|_, pool| pool.strong_count() > 0);
        if let Some(pool) = named.get(name).and_then(Weak::upgrade) {
            if !Arc::ptr_eq(&pool.model, &request.model) {
                bail!(
                    "pool {name} runs another model, or this model with other settings (labels, \
                     palette, resize, provider, threads, batch-size); give this element another \
                     pool name"
                );
            }
            let note = (pool.pool.workers() != request.workers
                || pool.pool.batch() != request.batch)
                .then(|| {
                    format!(
                        "pool {name} runs {} workers with batches of up to {} (set by the first \
                         element in it); this element's workers and batch-size are not used",
                        pool.pool.workers(),
                        pool.pool.batch()
                    )
                });
            return Ok((Member::enter(pool), note));
        }
        let pool = Arc::new(WorkerPool::start(&request)?);
        named.insert(name.to_string(), Arc::downgrade(&pool));
        Ok((Member::enter(pool), None))
    }

    fn enter(pool: Arc<WorkerPool>) -> Self {
        pool.streams.fetch_add(1, Ordering::SeqCst);
        Member(pool, LANES.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn submit(&self, job: Job) -> Ticket<Rendered> {
        self.0.pool.submit_in(self.1, job)
    }

    pub(super) fn workers(&self) -> usize {
        self.0.pool.workers()
    }

    pub(super) fn batch(&self) -> usize {
        self.0.pool.batch()
    }

    pub(super) fn stats(&self) -> PoolStats {
        let p = &self.0;
        PoolStats {
            name: p.name.clone().unwrap_or_default(),
            streams: p.streams.load(Ordering::SeqCst),
            workers: p.pool.workers(),
            queued: p.pool.queued(),
            batch_fill: p.pool.batch_fill(),
            frames: p.pool.jobs_run(),
            server_retries: p.model.retries(),
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkerPool {
    fn start(request: &PoolRequest<'_>) -> Result<Self> {
        let shared = worker::Shared::default();
        let workers = (0..request.workers.max(1))
            .map(|i| {
                worker::worker(
                    Segmenter::new(request.model.clone()),
                    i,
                    request.pad_to,
                    &shared,
                )
            })
            .collect();
        let pool = Pool::batched("beitseg", workers, request.batch, request.timeout)?;
        Ok(WorkerPool {
            name: request.name.map(str::to_string),
            model: request.model.clone(),
            pool,
            streams: AtomicUsize::new(0),
        })
    }
}
