//! The state of one queue a push consumer owns (RocketMQ's
//! `ProcessQueue`): its offset tracker, whether it was released, its lock
//! (ordered clustering), the buffer of an ordered queue and its tasks.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use mq_protocol::body::MessageQueue;
use mq_protocol::MessageExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::consumer::tracker::OffsetTracker;
use crate::sync::lock;

/// One owned queue.
pub(super) struct ProcessQueue {
    pub mq: MessageQueue,
    tracker: Mutex<OffsetTracker>,
    dropped: AtomicBool,
    /// Held through LOCK_BATCH_MQ (ordered clustering only).
    pub locked: AtomicBool,
    /// Ordered consumption: pulled messages waiting, in offset order.
    pub buffer: Mutex<VecDeque<MessageExt>>,
    /// Wakes the ordered consume task (new messages, lock regained, released).
    pub wake: Notify,
    /// The pull task and, when ordered, the consume task.
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ProcessQueue {
    /// A queue read from `offset`, `locked` if its lock is already held.
    pub(super) fn new(mq: MessageQueue, offset: i64, locked: bool) -> Self {
        ProcessQueue {
            mq,
            tracker: Mutex::new(OffsetTracker::new(offset)),
            dropped: AtomicBool::new(false),
            locked: AtomicBool::new(locked),
            buffer: Mutex::default(),
            wake: Notify::new(),
            tasks: Mutex::default(),
        }
    }

    pub(super) fn tracker(&self) -> MutexGuard<'_, OffsetTracker> {
        lock(&self.tracker)
    }

    /// True once the queue was released: its offsets no longer commit.
    pub(super) fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Marks the queue released.
    pub(super) fn set_dropped(&self) {
        self.dropped.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_locked(&self) -> bool {
        self.locked.load(Ordering::SeqCst)
    }

    /// Stops the queue's tasks.
    pub(super) fn abort_tasks(&self) {
        let tasks: Vec<_> = lock(&self.tasks).drain(..).collect();
        for task in tasks {
            task.abort();
        }
    }

    /// Releases the queue: no more commits, the ordered task wakes to see
    /// it, and every task stops.
    pub(super) fn release(&self) {
        self.set_dropped();
        self.wake.notify_waiters();
        self.abort_tasks();
    }
}
